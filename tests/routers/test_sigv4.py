"""SigV4 signing gives, byte for byte, the signature botocore's signer gives the same request.
(test_aws_client.py checks it over HTTP, against a moto server that verifies signatures.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from beat_handover.routers.sigv4 import Credentials, sign_post

TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
HOSTS = st.sampled_from(
    ["dynamodb.eu-west-2.amazonaws.com", "sqs.cn-north-1.amazonaws.com.cn", "127.0.0.1:5000"]
)
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]),
)


def botocore_headers(host, headers, body, credentials, region, service, now):
    """What botocore's SigV4Auth.add_auth produces, at a time of our choosing."""
    request = AWSRequest(method="POST", url=f"https://{host}/", data=body, headers=dict(headers))
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    auth = SigV4Auth(credentials, service, region)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    signed = auth.signed_headers(auth.headers_to_sign(request))
    return (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


@settings(max_examples=300, deadline=None)
@given(
    host=HOSTS,
    target=TEXT,
    extra=TEXT,
    body=st.binary(max_size=300),
    key=st.from_regex(r"\A[A-Z0-9]{16,20}\Z"),
    secret=TEXT,
    token=st.none() | TEXT,
    region=st.sampled_from(["eu-west-2", "us-east-1", "cn-north-1", "ap-southeast-2"]),
    service=st.sampled_from(["dynamodb", "sqs"]),
    now=TIMES,
)
def test_the_signature_is_botocores(
    host, target, extra, body, key, secret, token, region, service, now
):
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": target,
        "X-Custom-Spaced": f"  {extra}   {extra}  ",
    }
    ours = sign_post(
        host=host,
        headers=headers,
        body=body,
        credentials=Credentials(key, secret, token),
        region=region,
        service=service,
        now=now,
    )
    expected = botocore_headers(
        host, headers, body, BotocoreCredentials(key, secret, token), region, service, now
    )
    assert ours["Authorization"] == expected
    assert ours["X-Amz-Date"] == now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert ours.get("X-Amz-Security-Token") == token
    assert ours["Host"] == host


def test_the_aws_test_suite_post_vanilla_vector():
    """AWS's SigV4 test suite, case post-vanilla: a POST to / with an empty body."""
    signed = sign_post(
        host="example.amazonaws.com",
        headers={},
        body=b"",
        credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region="us-east-1",
        service="service",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert signed == {
        "Host": "example.amazonaws.com",
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 "
        "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    }


def test_a_time_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_post(
            host="h",
            headers={},
            body=b"",
            credentials=Credentials("k", "s"),
            region="eu-west-2",
            service="sqs",
            now=datetime(2024, 1, 1),
        )


def test_the_secret_and_token_stay_out_of_reprs():
    text = repr(Credentials("AKIDEXAMPLE", "the-secret", "the-token"))
    assert "AKIDEXAMPLE" in text
    assert "the-secret" not in text and "the-token" not in text
