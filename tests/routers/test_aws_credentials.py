"""The handlers' credentials: the environment's keys as they are at each request; else the
container credentials endpoint (Lambda SnapStart, ECS), kept and refreshed before they expire;
else a clear refusal. The endpoint is a real HTTP server on a loopback port."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from beat_handover.routers.aws_credentials import EnvironmentCredentials
from beat_handover.routers.errors import AwsRequestRefused, AwsUnavailable
from beat_handover.routers.sigv4 import Credentials
from tests.routers.conftest import FakeClock
from tests.routers.scripted_server import Answer, ScriptedServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def endpoint():
    with ScriptedServer() as server:
        yield server


def credentials_answer(key: str, *, expires_in_seconds: float) -> Answer:
    expiration = datetime.fromtimestamp(NOW + expires_in_seconds, UTC)
    return Answer(
        body=json.dumps(
            {
                "AccessKeyId": key,
                "SecretAccessKey": f"secret-of-{key}",
                "Token": f"token-of-{key}",
                "Expiration": expiration.isoformat().replace("+00:00", "Z"),
            }
        ).encode()
    )


def test_the_environment_keys_are_read_at_each_request():
    environ = {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1"}
    credentials = EnvironmentCredentials(environ)
    assert credentials() == Credentials("AKID1", "s1", None)
    environ.update(AWS_ACCESS_KEY_ID="ASIA2", AWS_SECRET_ACCESS_KEY="s2", AWS_SESSION_TOKEN="t2")
    assert credentials() == Credentials("ASIA2", "s2", "t2")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {},
            "no AWS credentials: none of AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY, "
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI is set",
        ),
        (
            {"AWS_ACCESS_KEY_ID": "AKID"},
            "AWS_SECRET_ACCESS_KEY is not set but its partner is: set both, or neither",
        ),
        (
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"},
            "AWS_CONTAINER_CREDENTIALS_FULL_URI='http://example.com/creds' must be an https "
            "URL, or an http URL of a loopback address or of 169.254.170.2, ",
        ),
    ],
)
def test_missing_or_unsafe_credentials_are_refused_saying_what_to_set(environ, message):
    with pytest.raises(AwsRequestRefused) as caught:
        EnvironmentCredentials(environ)()
    assert str(caught.value).startswith(message)


def test_container_credentials_are_fetched_with_the_token_and_kept(endpoint, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("the-token\n")
    endpoint.script(credentials_answer("ASIA1", expires_in_seconds=3600))
    clock = FakeClock()
    clock.now = NOW
    credentials = EnvironmentCredentials(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{endpoint.url}/2018-06-01/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ignored-when-the-file-is-set",
        },
        clock=clock,
    )
    assert credentials() == Credentials("ASIA1", "secret-of-ASIA1", "token-of-ASIA1")
    clock.advance(3000 - 1)  # 601 s of life left: kept
    assert credentials().access_key_id == "ASIA1"
    assert len(endpoint.received) == 1
    assert endpoint.received[0].headers["Authorization"] == "the-token"


def test_container_credentials_are_refreshed_ten_minutes_before_they_expire(endpoint):
    endpoint.script(
        credentials_answer("ASIA1", expires_in_seconds=3600),
        credentials_answer("ASIA2", expires_in_seconds=7200),
    )
    clock = FakeClock()
    clock.now = NOW
    credentials = EnvironmentCredentials(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
        },
        clock=clock,
    )
    assert credentials().access_key_id == "ASIA1"
    clock.advance(3001)  # 599 s left
    assert credentials().access_key_id == "ASIA2"
    assert len(endpoint.received) == 2


def test_a_failed_refresh_keeps_valid_credentials_and_refuses_expired_ones(endpoint, caplog):
    endpoint.script(
        credentials_answer("ASIA1", expires_in_seconds=3600),
        Answer(503, b"busy"),
        Answer(503, b"still busy"),
    )
    clock = FakeClock()
    clock.now = NOW
    credentials = EnvironmentCredentials(
        {"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url}, clock=clock
    )
    assert credentials().access_key_id == "ASIA1"
    clock.advance(3300)  # 300 s left: refresh due, fails, the kept ones still sign
    assert credentials().access_key_id == "ASIA1"
    assert "refresh failed, using the kept credentials for 300s more" in caplog.text
    clock.advance(300)
    with pytest.raises(AwsUnavailable, match="answered HTTP 503: still busy"):
        credentials()


@pytest.mark.parametrize(
    ("answer", "failure", "message"),
    [
        (Answer(403, b"bad token"), AwsRequestRefused, "answered HTTP 403: bad token"),
        (
            Answer(200, b'{"AccessKeyId": "A"}'),
            AwsUnavailable,
            "answered without AccessKeyId, SecretAccessKey and an ISO 8601 Expiration",
        ),
    ],
)
def test_a_bad_answer_of_the_endpoint_is_named(endpoint, answer, failure, message):
    endpoint.script(answer)
    with pytest.raises(failure, match=message):
        EnvironmentCredentials({"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url})()


def test_a_token_with_a_line_break_is_refused(endpoint):
    with pytest.raises(AwsRequestRefused, match="holds a line break"):
        EnvironmentCredentials(
            {
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t\r\nX-Injected: 1",
            }
        )()
    assert endpoint.received == []
