"""The AWS credentials of a handler: those its Lambda environment gives it, and no others.

Looked for in this order, as the AWS SDKs do:

1. ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``: Lambda, Lambda@Edge
   included, sets them to the execution role's credentials. They are read again for every
   request, so a request is signed with what the environment holds at that moment (botocore's
   environment provider, too, uses them as they are, with no refresh of its own).
2. The container credentials endpoint, ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` (ECS) or
   ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` or
   ``AWS_CONTAINER_AUTHORIZATION_TOKEN``: what Lambda provides instead of the variables above to
   a function with SnapStart. Fetched on first use and kept; fetched again for the first request
   less than ten minutes before they expire (botocore's mandatory refresh). If that fetch fails
   while the kept credentials are still valid, they sign the request and the next one tries again.
   A plain-HTTP full URI must point at a loopback address or the ECS/EKS credential hosts, as
   the SDKs require, so credentials are never asked of an arbitrary host in clear text.

Shared config files, profiles, SSO and instance metadata are never read: a Lambda function has
none of them. Without credentials, every call fails with AwsRequestRefused saying what to set,
and the switch keeps routing from its last good route (or to the old side).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

from beat_handover.routers.errors import AwsCallFailed, AwsRequestRefused, AwsUnavailable
from beat_handover.routers.sigv4 import Credentials

logger = logging.getLogger(__name__)

REFRESH_BEFORE_EXPIRY_SECONDS = 600
FETCH_TIMEOUT_SECONDS = 2.0
ECS_CREDENTIALS_HOST = "169.254.170.2"
# Hosts the SDKs let a plain-HTTP full URI name (ECS, EKS Pod Identity over IPv4 and IPv6).
HTTP_CREDENTIALS_HOSTS = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"})


class EnvironmentCredentials:
    """``credentials()`` returns the credentials to sign the next request with, else raises
    AwsRequestRefused (none are configured) or AwsUnavailable (the endpoint failed)."""

    def __init__(
        self,
        environ: Mapping[str, str] = os.environ,
        *,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._environ = environ
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._kept: Credentials | None = None
        self._expires_at = 0.0

    def __call__(self) -> Credentials:
        key = self._environ.get("AWS_ACCESS_KEY_ID")
        secret = self._environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return Credentials(key, secret, self._environ.get("AWS_SESSION_TOKEN") or None)
        if key or secret:
            missing = "AWS_SECRET_ACCESS_KEY" if key else "AWS_ACCESS_KEY_ID"
            raise AwsRequestRefused(
                f"{missing} is not set but its partner is: set both, or neither",
                code="PartialCredentials",
            )
        url = self._container_url()
        now = self._clock()
        if self._kept is None or self._expires_at - now < REFRESH_BEFORE_EXPIRY_SECONDS:
            try:
                self._kept, self._expires_at = self._fetch(url)
            except AwsCallFailed as exc:
                if self._kept is None or self._expires_at <= now:
                    raise
                logger.warning(
                    "credentials_url=%s refresh failed, using the kept credentials for %.0fs "
                    "more: %s",
                    url,
                    self._expires_at - now,
                    exc,
                )
        return self._kept

    def _container_url(self) -> str:
        relative = self._environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        if relative:
            return f"http://{ECS_CREDENTIALS_HOST}{relative}"
        full = self._environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if not full:
            raise AwsRequestRefused(
                "no AWS credentials: none of AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY, "
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI is "
                "set. Lambda sets them from the function's execution role; elsewhere, set "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)",
                code="NoCredentials",
            )
        parts = urlsplit(full)
        if parts.scheme == "https" and parts.hostname:
            return full
        if parts.scheme == "http" and _local_credentials_host(parts.hostname or ""):
            return full
        raise AwsRequestRefused(
            f"AWS_CONTAINER_CREDENTIALS_FULL_URI={full!r} must be an https URL, or an http URL "
            f"of a loopback address or of {', '.join(sorted(HTTP_CREDENTIALS_HOSTS))}",
            code="InvalidContainerCredentialsUri",
        )

    def _token(self) -> str | None:
        path = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as file:
                    token = file.read().strip()
            except OSError as exc:
                raise AwsUnavailable(
                    f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={path!r} cannot be read: {exc}",
                    code="TokenFileUnreadable",
                ) from None
        else:
            token = self._environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if token and ("\r" in token or "\n" in token):
            raise AwsRequestRefused(
                "the container authorization token holds a line break; it would end the header",
                code="InvalidContainerAuthorizationToken",
            )
        return token or None

    def _fetch(self, url: str) -> tuple[Credentials, float]:
        parts = urlsplit(url)
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(parts.hostname, parts.port, timeout=self._timeout_seconds)
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = token
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise AwsUnavailable(
                f"the container credentials endpoint {url} did not answer: "
                f"{type(exc).__name__}: {exc}",
                code=type(exc).__name__,
            ) from None
        finally:
            connection.close()
        if response.status != 200:
            failure = AwsUnavailable if response.status >= 500 else AwsRequestRefused
            raise failure(
                f"the container credentials endpoint {url} answered HTTP {response.status}: "
                f"{data[:200].decode('utf-8', 'replace')}",
                code=f"HTTP{response.status}",
                status=response.status,
            )
        try:
            answer = json.loads(data)
            credentials = Credentials(
                answer["AccessKeyId"], answer["SecretAccessKey"], answer.get("Token")
            )
            expires_at = datetime.fromisoformat(answer["Expiration"]).timestamp()
        except (ValueError, KeyError, TypeError) as exc:
            raise AwsUnavailable(
                f"the container credentials endpoint {url} answered without AccessKeyId, "
                f"SecretAccessKey and an ISO 8601 Expiration ({type(exc).__name__}: {exc})",
                code="InvalidCredentialsAnswer",
            ) from None
        return credentials, expires_at


def _local_credentials_host(host: str) -> bool:
    if host in HTTP_CREDENTIALS_HOSTS:
        return True
    import ipaddress  # only on this rare path: it is not needed to start

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
