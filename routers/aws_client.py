"""The handlers' AWS calls (DynamoDB ``GetItem``, SQS ``SendMessage``), from the standard library.

Why not boto3: a handler's cold start is in front of a real visitor (Lambda@Edge adds it to the
first request of every new container), and boto3 is most of it. Measured on a 2-core AMD EPYC,
CPU time of 9 fresh interpreters each (median): ``import boto3`` and one DynamoDB client 260 ms;
a botocore session and client 0.91 times that, with explicit credentials and config 0.91; even
``import botocore.session`` alone 0.63. Loading botocore's service models and endpoint rules is
the bulk, so no use of botocore starts in half the time of the usual handler, and these
handlers need two operations of two JSON APIs. The standard library's HTTP, TLS, HMAC and JSON
modules, with a verifying TLS context built, took 0.27. ``bench/bench_routers.py`` measures the
handlers themselves against the usual way.

What a call does, and guarantees:

- **Endpoint.** ``endpoint_url`` if given, else ``AWS_ENDPOINT_URL_<SERVICE>`` or
  ``AWS_ENDPOINT_URL`` from the environment (as boto3 reads them), else
  ``https://<service>.<region>.amazonaws.com`` (``.amazonaws.com.cn`` in China regions). Regions
  of the isolated partitions need ``endpoint_url``; FIPS and dual-stack endpoints too.
- **Signing.** Every attempt is signed anew (SigV4, ``sigv4.py``) with the credentials the
  environment holds then (``aws_credentials.py``).
- **One connection**, kept alive between calls and checked before reuse: one the server closed
  while idle is replaced before anything is sent on it (as urllib3 does for botocore), so a read
  every 30 s reuses the open TLS connection while the server keeps it, and never fails for
  having been idle. The TLS context (the CA certificates, tens of milliseconds) is built at the
  first HTTPS connection, as urllib3 builds boto3's.
- **Timeouts** per attempt: ``connect_timeout_seconds`` to connect, ``read_timeout_seconds`` for
  each read of the answer (socket timeouts, like botocore's).
- **Retries** as botocore's ``standard`` mode: up to ``attempts`` in all, after a network error
  or timeout, HTTP 500/502/503/504, a throttling or transient error code, or a DynamoDB answer
  whose ``x-amz-crc32`` does not match its body. Before attempt ``n + 1`` it sleeps a random
  time up to ``min(scale * 2 ** (n - 1), 20)`` seconds, ``scale`` being 1 s after throttling and
  otherwise 25 ms for DynamoDB, 50 ms for SQS. Unlike botocore there is no client-wide retry
  quota, which only matters to many concurrent calls: a container makes one at a time.
- **Errors**: AwsUnavailable once the attempts are spent on retryable failures, at once
  AwsRequestRefused for any other error answer (or missing credentials); both carry AWS's error
  code and the HTTP status, and say which call failed and what AWS said.

A client is not thread-safe; Lambda runs one request at a time per container.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import re
import select
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from beat_handover.routers.aws_credentials import EnvironmentCredentials
from beat_handover.routers.errors import (
    AwsCallFailed,
    AwsRequestRefused,
    AwsUnavailable,
    RouterConfigError,
)
from beat_handover.routers.sigv4 import Credentials, sign_post

logger = logging.getLogger(__name__)

USER_AGENT = "beat-handover-routers"
MAX_BACKOFF_SECONDS = 20.0
THROTTLING_BACKOFF_SCALE_SECONDS = 1.0
# botocore/retries/standard.py: the codes its standard mode retries, and which are throttling.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
_XML_CODE = re.compile(r"<Code>([^<]{1,200})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,1000})</Message>")


@dataclass(frozen=True)
class Service:
    """What differs between the JSON APIs the handlers call."""

    name: str  # endpoint prefix and signing name
    target_prefix: str  # X-Amz-Target is TARGET_PREFIX.Operation
    backoff_scale_seconds: float
    checks_crc32: bool = False


SERVICES = {
    "dynamodb": Service("dynamodb", "DynamoDB_20120810", 0.025, checks_crc32=True),
    "sqs": Service("sqs", "AmazonSQS", 0.05),
}


def endpoint_for(
    service: str, region: str, endpoint_url: str | None, environ: Mapping[str, str]
) -> str:
    """The base URL the client posts to (see the module docstring for the order)."""
    for source, url in (
        ("endpoint_url", endpoint_url),
        (f"AWS_ENDPOINT_URL_{service.upper()}", environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")),
        ("AWS_ENDPOINT_URL", environ.get("AWS_ENDPOINT_URL")),
    ):
        if url:
            parts = urlsplit(url)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path not in ("", "/")
                or parts.query
                or parts.username
            ):
                raise RouterConfigError(
                    f"{source} must be an http(s) URL of a host and an optional port, such as "
                    f"http://localhost:4566, got {url!r}"
                )
            return url.rstrip("/")
    if "-iso" in region:
        raise RouterConfigError(
            f"region {region!r} is in an isolated AWS partition, whose {service} endpoint this "
            "handler does not know: set the config key endpoint_url"
        )
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{suffix}"


class AwsClient:
    """Calls of one AWS JSON API in one region: ``client.call("GetItem", {...})``."""

    def __init__(
        self,
        service: str,
        region: str,
        *,
        endpoint_url: str | None = None,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        attempts: int,
        environ: Mapping[str, str] = os.environ,
        credentials: Callable[[], Credentials] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.service = SERVICES[service]
        self.region = region
        self.endpoint = endpoint_for(service, region, endpoint_url, environ)
        self.attempts = attempts
        self._connect_timeout = connect_timeout_seconds
        self._read_timeout = read_timeout_seconds
        self._credentials = credentials or EnvironmentCredentials(environ)
        self._sleep = sleep
        self._rng = rng or random.Random()
        parts = urlsplit(self.endpoint)
        self._https = parts.scheme == "https"
        self._address = (parts.hostname or "", parts.port)
        default_port = 443 if self._https else 80
        self._host = parts.netloc.lower()
        if parts.port == default_port:
            self._host = self._host.rsplit(":", 1)[0]
        self._ca_bundle = environ.get("AWS_CA_BUNDLE") or None
        self._tls: ssl.SSLContext | None = None
        self._connection: http.client.HTTPConnection | None = None

    def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The decoded JSON answer of ``operation``, else AwsUnavailable or AwsRequestRefused."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        attempt = 1
        while True:
            try:
                return self._attempt(operation, body)
            except AwsUnavailable as exc:
                if attempt >= self.attempts:
                    raise AwsUnavailable(
                        f"{self.service.name} {operation} at {self.endpoint} failed "
                        f"{attempt} time(s); the last time: {exc}",
                        code=exc.code,
                        status=exc.status,
                    ) from None
                scale = (
                    THROTTLING_BACKOFF_SCALE_SECONDS
                    if exc.code in THROTTLING_CODES
                    else self.service.backoff_scale_seconds
                )
                delay = self._rng.random() * min(scale * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                logger.debug(
                    "service=%s operation=%s attempt=%s retry_in=%.3fs: %s",
                    self.service.name,
                    operation,
                    attempt,
                    delay,
                    exc,
                )
                self._sleep(delay)
                attempt += 1

    def close(self) -> None:
        """Close the kept connection (the next call opens another)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _attempt(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = sign_post(
            host=self._host,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{self.service.target_prefix}.{operation}",
            },
            body=body,
            credentials=self._credentials(),
            region=self.region,
            service=self.service.name,
            now=datetime.now(UTC),
        )
        headers["User-Agent"] = USER_AGENT
        try:
            connection = self._open_connection()
            connection.request("POST", "/", body, headers)
            connection.sock.settimeout(self._read_timeout)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise AwsUnavailable(
                f"{self.service.name} {operation}: {type(exc).__name__}: {exc}",
                code=type(exc).__name__,
            ) from None
        if response.will_close:
            self.close()
        status = response.status
        crc32 = response.getheader("x-amz-crc32")
        if self.service.checks_crc32 and crc32 is not None and not _crc32_matches(data, crc32):
            raise AwsUnavailable(
                f"{self.service.name} {operation}: the answer's CRC32 is {zlib.crc32(data)}, "
                f"not {crc32} as its x-amz-crc32 header says: it was damaged on the way",
                code="CRC32Mismatch",
                status=status,
            )
        if 200 <= status < 300:
            try:
                answer = json.loads(data) if data else {}
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise AwsUnavailable(
                    f"{self.service.name} {operation} answered HTTP {status} with a body that "
                    f"is not a JSON object: {data[:200]!r}",
                    code="InvalidAnswer",
                    status=status,
                )
            return answer
        raise self._error(operation, status, response, data)

    def _open_connection(self) -> http.client.HTTPConnection:
        connection = self._connection
        # Readable while idle means the server closed it (or broke the protocol).
        if (
            connection is not None
            and connection.sock is not None
            and select.select([connection.sock], [], [], 0)[0]
        ):
            self.close()
            connection = None
        if connection is None or connection.sock is None:
            host, port = self._address
            if self._https:
                if self._tls is None:
                    # At the first connection, as urllib3 does for boto3: loading the CA
                    # certificates is the costly part of a TLS context.
                    self._tls = ssl.create_default_context(cafile=self._ca_bundle)
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._connect_timeout, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
            connection.connect()
            self._connection = connection
        return connection

    def _error(
        self, operation: str, status: int, response: http.client.HTTPResponse, data: bytes
    ) -> AwsCallFailed:
        code, message = _error_code_and_message(status, response, data)
        retryable = (
            status in TRANSIENT_STATUSES or code in THROTTLING_CODES or code in TRANSIENT_CODES
        )
        failure = AwsUnavailable if retryable else AwsRequestRefused
        return failure(
            f"{self.service.name} {operation} answered HTTP {status} {code}: {message}",
            code=code,
            status=status,
        )


def _error_code_and_message(
    status: int, response: http.client.HTTPResponse, data: bytes
) -> tuple[str, str]:
    """AWS's error code and message, from a JSON body (``__type``, ``message``), the
    ``x-amzn-query-error`` header SQS adds for its older codes, or an XML body."""
    text = data.decode("utf-8", "replace")
    code, message = "", ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("__type") or "")
        message = str(body.get("message") or body.get("Message") or "")
    else:
        found_code, found_message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
        code = found_code.group(1) if found_code else ""
        message = found_message.group(1) if found_message else text[:300]
    code = (code or response.getheader("x-amzn-ErrorType") or "").rsplit("#", 1)[-1]
    code = code.split(":", 1)[0]
    query_error = response.getheader("x-amzn-query-error")
    if query_error and ";" in query_error:
        code = query_error.split(";", 1)[0]
    return code or f"HTTP{status}", message or "(no message)"


def _crc32_matches(data: bytes, header: str) -> bool:
    try:
        return int(header) == zlib.crc32(data)
    except ValueError:
        return False
