"""AWS Signature Version 4 for the one kind of request the handlers send, from the standard library.

That request is a POST of a JSON body to ``/`` with no query string (the JSON protocol of DynamoDB
and SQS). Its signature is the documented algorithm ("Create a signed AWS API request", IAM user
guide): a canonical request (method, path, empty query, the signed headers lower-cased, sorted,
their values trimmed with inner runs of spaces folded to one, then the SHA-256 of the body),
hashed into a string to sign under the scope ``DATE/REGION/SERVICE/aws4_request``, signed with a
key derived from the secret by four chained HMAC-SHA256 steps.

The tests check it byte for byte against botocore's own signer, and over HTTP against a moto
server that verifies signatures and refuses a wrong secret or session token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    """An access key, its secret and, for temporary credentials (Lambda's are), a session token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_post(
    *,
    host: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers of a POST to ``/`` on ``host`` (as sent in the Host header, with a port
    unless it is the scheme's default): ``headers`` plus Host, X-Amz-Date, X-Amz-Security-Token
    (with a session token) and Authorization. Every header returned is signed. ``now`` must be
    timezone-aware (it is written in UTC)."""
    if now.tzinfo is None:
        raise ValueError(f"sign_post needs a timezone-aware time, got {now!r}")
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {"Host": host, **headers, "X-Amz-Date": amz_date}
    if credentials.session_token:
        signed["X-Amz-Security-Token"] = credentials.session_token
    canonical = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
    names = sorted(canonical)
    signed_names = ";".join(names)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed
