"""Where the lease lives: parsing ``dynamodb://TABLE?region=REGION`` and ``redis://host:port/db``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from beat_handover.beat_lock.errors import ConfigError

URL_FORMS = "dynamodb://TABLE?region=REGION, redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
TABLE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class LockLocation:
    """A parsed lock URL. ``backend`` is ``dynamodb`` or ``redis``; ``password``, for Redis, is
    one given apart from the URL (``beat_lock_password``), never shown."""

    backend: str
    url: str
    table: str | None = None
    region: str | None = None
    password: str | None = field(default=None, repr=False)
    # Redis only: replicas that must have each lease write and claim before its answer counts
    # (WAIT), and how long to wait for them; 0 replicas: do not wait.
    wait_replicas: int = 0
    wait_timeout_seconds: float = 0.5

    def describe(self) -> str:
        """A short human description for banners and status output."""
        if self.backend == "dynamodb":
            return f"dynamodb table {self.table} in {self.region or 'the default region'}"
        return f"redis at {redact(self.url)}"


def url_password(url: str) -> str | None:
    """The password a URL carries (``redis://:PW@host``, ``redis://user:PW@host`` or
    ``?password=PW``, as redis-py reads them), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    return parse_qs(parts.query).get("password", [None])[-1]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs, banners and error messages."""
    password = url_password(url)
    return url if password is None else url.replace(password, "***")


def parse_lock_url(url: object, *, setting: str = "beat_lock_url") -> LockLocation:
    """Parse a lock URL or raise ConfigError naming the setting, the value and the valid forms."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{setting} is required: set it to one of {URL_FORMS}, got {url!r}")
    url = url.strip()
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit only validates the port when it is read
    except ValueError as exc:
        raise ConfigError(
            f"{setting} {shown!r} is not a valid URL ({exc}); use {URL_FORMS}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "dynamodb":
        table = parts.netloc
        if not TABLE_PATTERN.match(table or ""):
            raise ConfigError(
                f"{setting} {shown!r} names no valid DynamoDB table (3-255 of A-Z a-z 0-9 _ . -); "
                "use dynamodb://TABLE?region=REGION"
            )
        if parts.path not in ("", "/"):
            raise ConfigError(
                f"{setting} {shown!r} has a path {parts.path!r}; use dynamodb://TABLE?region=REGION"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"region"})
        if unknown:
            raise ConfigError(
                f"{setting} {shown!r} has unknown parameter(s) {', '.join(unknown)}; "
                "the only one is region (e.g. ?region=eu-west-2)"
            )
        region = query.get("region", [None])[-1]
        if region is not None and not REGION_PATTERN.match(region):
            raise ConfigError(
                f"{setting} {shown!r} has region {region!r}, which is not an AWS region name "
                "such as eu-west-2"
            )
        return LockLocation("dynamodb", url, table=table, region=region)
    if scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise ConfigError(f"{setting} {shown!r} names no host; use redis://HOST:PORT/DB")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError(
                f"{setting} {shown!r} has database {db!r}; it must be a number, e.g. redis://HOST:6379/0"
            )
        return LockLocation("redis", url)
    raise ConfigError(f"{setting} {shown!r} has unknown scheme {parts.scheme!r}; use {URL_FORMS}")
