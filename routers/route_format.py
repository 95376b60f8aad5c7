"""The route item and its audit entries: the one module that knows their DynamoDB format.

Route item, pk=``route#NAME``, sk=``route``:

    kind               S  cloudfront | ses_receipts: which handler serves it, what a side is
    percent            N  share of traffic sent to the new side, 0 to 100, at most 4 decimals
    old, new           M  the two sides: a label (paas, ecs) and a target (an origin or a queue)
    cache_ttl_seconds  N  how long a handler container caches the item (baked in when packaged)
    version            N  +1 on every write; every write is conditional on the version it read
    updated_at, updated_by, reason   S  for people
    rollout            M  absent unless a step-by-step rollout is under way (``Rollout``): its
                          steps, bake time, alarms, owner, state and how far it got

A handler reads kind, percent, old, new and cache_ttl_seconds only, and ignores attributes it does
not know, so a handler packaged before a field was added keeps reading items that carry it.

Audit entry, pk=``route-audit#NAME``, sk=``<ISO-8601 UTC>#<random hex>``, ``expires_at`` about
400 days on: action, actor, host, old_percent (absent on create), new_percent, version, reason.

Percentages are decimals, never floats: a share is decided by comparing a draw from
``range(RESOLUTION)`` with ``threshold``, both integers, so 0 sends nothing, 100 everything, and
0.1 exactly one draw in a thousand.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from beat_handover.routers.attribute_values import deserialize, serialize
from beat_handover.routers.errors import MalformedRoute, RouterConfigError, RouterError
from beat_handover.routers.fields import REQUIRED, Field, parse_fields

KINDS = ("cloudfront", "ses_receipts")
ROUTE_PREFIX = "route#"
ROUTE_SK = "route"
AUDIT_PREFIX = "route-audit#"
AUDIT_RETENTION = timedelta(days=400)
RESOLUTION = 1_000_000  # draws per decision: one draw is 0.0001 %
PERCENT_PLACES = 4
DEFAULT_CACHE_TTL_SECONDS = 30
MAX_CACHE_TTL_SECONDS = 3600
LABEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DOMAIN_PATTERN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
QUEUE_URL_PATTERN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/[0-9A-Za-z_-]+/[A-Za-z0-9_-]{1,80}$"
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SIDES = ("old", "new")
ROLLOUT_STATES = ("running", "stopped")  # stopped: interrupted (Ctrl-C), to be resumed
MAX_ROLLOUT_STEPS = 20
MAX_ROLLOUT_ALARMS = 20
ALARM_NAME_PATTERN = re.compile(r"^[^\x00-\x1f]{1,255}$")


@dataclass(frozen=True)
class OriginSide:
    """A CloudFront custom origin. ``None`` fields keep what the distribution has."""

    label: str
    domain_name: str
    protocol: str | None = None
    port: int | None = None
    path: str | None = None
    read_timeout_seconds: int | None = None
    keepalive_timeout_seconds: int | None = None

    def describe(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol or '(same protocol)'}://{self.domain_name}{port}{self.path or ''}"


@dataclass(frozen=True)
class QueueSide:
    """An SQS queue that the workers of one environment consume."""

    label: str
    queue_url: str

    @property
    def queue_name(self) -> str:
        return self.queue_url.rsplit("/", 1)[-1]

    def describe(self) -> str:
        return self.queue_url


Side = OriginSide | QueueSide


@dataclass(frozen=True)
class Rollout:
    """A step-by-step rollout under way on a route: raise the percentage to each of ``steps``
    in turn, each held for ``bake_seconds`` while ``alarms`` stay quiet. ``reached`` steps have
    been taken (0 before the first); the current one was reached, or the rollout last
    (re)started, at ``since``. Only ``owner`` (user@host) writes it while it is ``running``."""

    id: str
    owner: str
    state: str
    steps: tuple[Decimal, ...]
    bake_seconds: int
    alarms: tuple[str, ...]
    insufficient_data_aborts: bool
    reached: int
    since: str
    started_at: str

    @property
    def next_step(self) -> Decimal | None:
        """The percentage of the next step, None once the last one is reached."""
        return self.steps[self.reached] if self.reached < len(self.steps) else None


@dataclass(frozen=True)
class Route:
    """A validated route item."""

    name: str
    kind: str
    percent: Decimal
    old: Side
    new: Side
    cache_ttl_seconds: int = DEFAULT_CACHE_TTL_SECONDS
    version: int = 0
    updated_at: str = ""
    updated_by: str = ""
    reason: str = ""
    rollout: Rollout | None = None

    @property
    def threshold(self) -> int:
        """Draws below this (out of RESOLUTION) go to the new side; exact, no rounding."""
        return int(self.percent * RESOLUTION / 100)

    def side(self, which: str) -> Side:
        return self.new if which == "new" else self.old

    def side_called(self, name: str) -> str | None:
        """``old`` or ``new`` for a side name or label (as override headers give them)."""
        for which in SIDES:
            if name in (which, self.side(which).label):
                return which
        return None


@dataclass(frozen=True)
class RouteChange:
    """One audit entry: who changed a route's percentage, when, from what to what, and why."""

    route: str
    at: str
    action: str
    actor: str
    host: str
    old_percent: Decimal | None
    new_percent: Decimal
    version: int
    reason: str


def format_percent(percent: Decimal) -> str:
    """``12.5``, ``0.1``, ``100``: no exponent, no trailing zeros."""
    return f"{percent.normalize():f}"


def parse_percent(
    value: object, *, source: str, error: type[RouterError] = RouterConfigError
) -> Decimal:
    """A percentage from a string, int or Decimal, exact to 4 decimal places, else ``error``."""
    expected = (
        f"{source} must be a number from 0 to 100 with at most {PERCENT_PLACES} decimal "
        f"places, such as 0.1 or 25, got {value!r}"
    )
    if isinstance(value, Decimal):
        percent = value
    elif isinstance(value, int) and not isinstance(value, bool):
        percent = Decimal(value)
    elif isinstance(value, str):
        try:
            percent = Decimal(value.strip())
        except InvalidOperation:
            raise error(expected) from None
    else:
        raise error(expected)
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise error(expected)
    if (percent * RESOLUTION / 100) % 1 != 0:
        raise error(expected)
    return percent + 0  # turns -0 into 0


def parse_name(value: object, *, source: str, error: type[RouterError] = RouterConfigError) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise error(
            f"{source} must be a route name of 1-100 letters, digits, '.', '_' or '-' "
            f"(starting with a letter or digit), got {value!r}"
        )
    return value


def _label(value: Any) -> str:
    if not isinstance(value, str) or not LABEL_PATTERN.match(value):
        raise ValueError("a short lower-case label such as 'paas' or 'ecs'")
    return value


def _domain(value: Any) -> str:
    if not isinstance(value, str) or not DOMAIN_PATTERN.match(value):
        raise ValueError("a host name such as ecs.example.com (no scheme, port or path)")
    return value


def _protocol(value: Any) -> str:
    if value not in ("http", "https"):
        raise ValueError("'http' or 'https'")
    return value


def _whole(value: Any, low: int, high: int, expected: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(expected)
    if value % 1 != 0 or not low <= value <= high:
        raise ValueError(expected)
    return int(value)


def _port(value: Any) -> int:
    return _whole(value, 1, 65535, "a port number from 1 to 65535")


def _timeout(value: Any) -> int:
    return _whole(value, 1, 180, "whole seconds from 1 to 180 (CloudFront's limits)")


def _path(value: Any) -> str:
    if not isinstance(value, str) or (value and (value[0] != "/" or value.endswith("/"))):
        raise ValueError("'' or a path starting with '/' and not ending with '/', such as /app")
    return value


def _queue_url(value: Any) -> str:
    if not isinstance(value, str) or not QUEUE_URL_PATTERN.match(value):
        raise ValueError(
            "an SQS queue URL such as https://sqs.eu-west-2.amazonaws.com/123456789012/ses "
            "(standard queues only)"
        )
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("non-empty text")
    return value


def _state(value: Any) -> str:
    if value not in ROLLOUT_STATES:
        raise ValueError(" or ".join(map(repr, ROLLOUT_STATES)))
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def parse_steps(values: object, *, source: str, error: type[RouterError]) -> tuple[Decimal, ...]:
    """Rollout steps: 1 to MAX_ROLLOUT_STEPS percentages above 0, each exact to the route's
    resolution and larger than the one before, else ``error``."""
    if not isinstance(values, list | tuple) or not 0 < len(values) <= MAX_ROLLOUT_STEPS:
        raise error(
            f"{source} must be 1 to {MAX_ROLLOUT_STEPS} percentages such as 1,5,25,50,100, got "
            f"{values!r}"
        )
    steps = tuple(parse_percent(value, source=source, error=error) for value in values)
    if any(after <= before for before, after in zip((Decimal(0), *steps), steps, strict=False)):
        raise error(
            f"{source} must rise step by step, above 0 (such as 1,5,25,50,100), got "
            f"{','.join(format_percent(step) for step in steps)}"
        )
    return steps


def _alarms(value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_ROLLOUT_ALARMS
        or not all(isinstance(name, str) and ALARM_NAME_PATTERN.match(name) for name in value)
    ):
        raise ValueError(f"a list of up to {MAX_ROLLOUT_ALARMS} CloudWatch alarm names")
    return tuple(value)


_ROLLOUT_FIELDS: dict[str, Field] = {
    "id": Field(_text, REQUIRED),
    "owner": Field(_text, REQUIRED),
    "state": Field(_state, REQUIRED),
    "steps": Field(lambda value: value, REQUIRED),  # checked by parse_steps
    "bake_seconds": Field(lambda value: _whole(value, 0, 7 * 86400, "whole seconds"), REQUIRED),
    "alarms": Field(_alarms, REQUIRED),
    "insufficient_data_aborts": Field(_flag, REQUIRED),
    "reached": Field(lambda value: _whole(value, 0, MAX_ROLLOUT_STEPS, "a step count"), REQUIRED),
    "since": Field(_text, REQUIRED),
    "started_at": Field(_text, REQUIRED),
}


def parse_rollout(data: object, *, where: str, error: type[RouterError]) -> Rollout:
    """A route's rollout from its stored map, else ``error`` naming the field and value."""
    values = parse_fields(data, _ROLLOUT_FIELDS, where=where, noun="field", error=error)
    values["steps"] = parse_steps(values["steps"], source=f"{where}: steps", error=error)
    if values["reached"] > len(values["steps"]):
        raise error(
            f"{where}: reached is {values['reached']}, but there are only "
            f"{len(values['steps'])} steps"
        )
    return Rollout(**values)


def rollout_to_dict(rollout: Rollout) -> dict[str, Any]:
    """The stored map of a rollout (what ``parse_rollout`` reads back)."""
    data = asdict(rollout)
    data["steps"] = list(rollout.steps)
    data["alarms"] = list(rollout.alarms)
    return data


_SIDE_FIELDS: dict[str, dict[str, Field]] = {
    "cloudfront": {
        "label": Field(_label, REQUIRED),
        "domain_name": Field(_domain, REQUIRED),
        "protocol": Field(_protocol),
        "port": Field(_port),
        "path": Field(_path),
        "read_timeout_seconds": Field(_timeout),
        "keepalive_timeout_seconds": Field(_timeout),
    },
    "ses_receipts": {"label": Field(_label, REQUIRED), "queue_url": Field(_queue_url, REQUIRED)},
}
_SIDE_TYPES: dict[str, type[OriginSide] | type[QueueSide]] = {
    "cloudfront": OriginSide,
    "ses_receipts": QueueSide,
}


def parse_side(kind: str, data: object, *, where: str, error: type[RouterError]) -> Side:
    """A side of a ``kind`` route from a plain mapping, else ``error`` naming field and value."""
    values = parse_fields(
        data, _SIDE_FIELDS[kind], where=f"{where} (a {kind} side)", noun="field", error=error
    )
    return _SIDE_TYPES[kind](**values)


def side_to_dict(side: Side) -> dict[str, Any]:
    """The plain mapping ``parse_side`` reads back (unset fields left out)."""
    return {key: value for key, value in asdict(side).items() if value is not None}


def side_from_url(kind: str, label: str, url: str, *, where: str, **extra: Any) -> Side:
    """A side from an operator's URL: an origin (``https://ecs.example.com:8443/app``) for
    cloudfront, a queue URL for ses_receipts. ``extra`` fields (timeouts) are added as given."""
    if kind == "ses_receipts":
        return parse_side(
            kind, {"label": label, "queue_url": url, **extra}, where=where, error=RouterConfigError
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RouterConfigError(f"{where} {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RouterConfigError(
            f"{where} must be an origin URL such as https://ecs.example.com or "
            f"http://ecs.example.com:8080/app, got {url!r}"
        )
    data = {
        "label": label,
        "domain_name": parts.hostname,
        "protocol": parts.scheme,
        "port": port if port is not None else {"http": 80, "https": 443}[parts.scheme],
        "path": parts.path.rstrip("/"),
        **extra,
    }
    return parse_side(kind, data, where=where, error=RouterConfigError)


def parse_route(data: Mapping[str, Any], *, error: type[RouterError]) -> Route:
    """A Route from the plain (deserialized) attributes of a route item, else ``error``."""
    name = data.get("pk")
    if not isinstance(name, str) or not name.startswith(ROUTE_PREFIX):
        raise error(f"route item has pk {name!r}; expected {ROUTE_PREFIX}NAME")
    name = parse_name(name[len(ROUTE_PREFIX) :], source="route name in pk", error=error)
    where = f"route {name!r}"
    kind = data.get("kind")
    if kind not in KINDS:
        raise error(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    percent = parse_percent(data.get("percent"), source=f"{where}: percent", error=error)
    old = parse_side(kind, data.get("old"), where=f"{where}: old", error=error)
    new = parse_side(kind, data.get("new"), where=f"{where}: new", error=error)
    if old.label == new.label or old.label == "new" or new.label == "old":
        raise error(
            f"{where}: the sides need distinct labels, and old may not be called 'new' nor new "
            f"'old'; got old={old.label!r} new={new.label!r}"
        )
    ttl, version = data.get("cache_ttl_seconds"), data.get("version")
    try:
        ttl = _whole(ttl, 1, MAX_CACHE_TTL_SECONDS, "")
    except ValueError:
        raise error(
            f"{where}: cache_ttl_seconds must be whole seconds from 1 to {MAX_CACHE_TTL_SECONDS}, "
            f"got {ttl!r}"
        ) from None
    try:
        version = _whole(version, 0, 2**63, "")
    except ValueError:
        raise error(f"{where}: version must be a whole number >= 0, got {version!r}") from None
    texts = {key: data.get(key, "") for key in ("updated_at", "updated_by", "reason")}
    bad = {key: value for key, value in texts.items() if not isinstance(value, str)}
    if bad:
        raise error(f"{where}: {', '.join(bad)} must be text, got {bad!r}")
    rollout = data.get("rollout")
    if rollout is not None:
        rollout = parse_rollout(rollout, where=f"{where}: rollout", error=error)
    return Route(name, kind, percent, old, new, ttl, version, **texts, rollout=rollout)


def new_route(name: str, kind: str, old: Side, new: Side, *, cache_ttl_seconds: int) -> Route:
    """A route to create, at 0 %, validated as a stored one would be (RouterConfigError)."""
    data = {
        "pk": ROUTE_PREFIX + parse_name(name, source="NAME"),
        "kind": kind,
        "percent": Decimal(0),
        "old": side_to_dict(old),
        "new": side_to_dict(new),
        "cache_ttl_seconds": cache_ttl_seconds,
        "version": 0,
    }
    return parse_route(data, error=RouterConfigError)


def route_key(name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": ROUTE_PREFIX + name}, "sk": {"S": ROUTE_SK}}


def route_to_item(route: Route) -> dict[str, Any]:
    """The DynamoDB item (AttributeValues) of a route."""
    data = {
        "pk": ROUTE_PREFIX + route.name,
        "sk": ROUTE_SK,
        "kind": route.kind,
        "percent": route.percent,
        "old": side_to_dict(route.old),
        "new": side_to_dict(route.new),
        "cache_ttl_seconds": route.cache_ttl_seconds,
        "version": route.version,
        "updated_at": route.updated_at,
        "updated_by": route.updated_by,
        "reason": route.reason,
    }
    if route.rollout is not None:
        data["rollout"] = rollout_to_dict(route.rollout)
    return {key: serialize(value) for key, value in data.items()}


def _plain(item: Mapping[str, Any], error: type[RouterError]) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise error(f"a stored item must be a map of attributes, got {item!r}")
    try:
        return {key: deserialize(value) for key, value in item.items()}
    except ValueError as exc:
        raise error(
            f"a stored item has an attribute value route items never hold ({exc}): {item!r}"
        ) from None


def route_from_item(item: Mapping[str, Any]) -> Route:
    """A Route from a DynamoDB item (AttributeValues), else MalformedRoute saying what is wrong."""
    return parse_route(_plain(item, MalformedRoute), error=MalformedRoute)


def iso_utc(now: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: sortable, for people and audit sort keys."""
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_item(change: RouteChange, now: datetime) -> dict[str, Any]:
    """The DynamoDB item of an audit entry, dated ``now`` (timezone-aware)."""
    data: dict[str, Any] = {
        "pk": AUDIT_PREFIX + change.route,
        "sk": f"{change.at}#{secrets.token_hex(4)}",
        "at": change.at,
        "action": change.action,
        "actor": change.actor,
        "host": change.host,
        "new_percent": change.new_percent,
        "version": change.version,
        "reason": change.reason,
        "expires_at": int((now + AUDIT_RETENTION).timestamp()),
    }
    if change.old_percent is not None:
        data["old_percent"] = change.old_percent
    return {key: serialize(value) for key, value in data.items()}


def change_from_item(item: Mapping[str, Any]) -> RouteChange:
    """An audit entry from its DynamoDB item, else MalformedRoute."""
    data = _plain(item, MalformedRoute)
    pk = data.get("pk", "")
    where = f"route audit entry {pk!r} {data.get('sk')!r}"
    texts = ("at", "action", "actor", "host", "reason")
    if (
        not isinstance(pk, str)
        or not all(isinstance(data.get(key), str) for key in texts)
        or not isinstance(data.get("version"), Decimal)
    ):
        raise MalformedRoute(f"{where} lacks one of {', '.join(texts)}, version: {data!r}")
    old = data.get("old_percent")
    return RouteChange(
        route=pk[len(AUDIT_PREFIX) :],
        at=data["at"],
        action=data["action"],
        actor=data["actor"],
        host=data["host"],
        old_percent=None
        if old is None
        else parse_percent(old, source=f"{where}: old_percent", error=MalformedRoute),
        new_percent=parse_percent(
            data.get("new_percent"), source=f"{where}: new_percent", error=MalformedRoute
        ),
        version=int(data["version"]),
        reason=data["reason"],
    )
