"""The percentage routes as the operator creates, steers, reads and packages them: the library
behind ``handover route``.

Routes live in the DynamoDB table of the lock URL (the Lambda handlers read them there), as items
``route#NAME`` with an audit trail ``route-audit#NAME``; the item format is
``beat_handover.routers.route_format``'s alone. A route is created once (at 0 %, both sides given
as URLs); a change only moves the percentage of a route that exists, so a typo in a name is an
error, never a new route. Every change is recorded as made by
:func:`~beat_handover.handover.procedure.audit.operator`.

The routers ship alone in a Lambda zip with an error tree of their own; every error of theirs is
raised here as the toolkit's (:func:`route_errors`), so the command exits with its documented
codes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import NoRegionError

from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreMissing,
    StoreUnavailable,
    WriteConflict,
)
from beat_handover.beat_lock.unreachable import explain
from beat_handover.handover.connection import Connection
from beat_handover.handover.instants import history_time, short_time
from beat_handover.handover.procedure.audit import operator
from beat_handover.routers.errors import (
    MalformedRoute,
    RouteConflict,
    RouteNotFound,
    RouterConfigError,
    RouteStoreMissing,
    RouteStoreUnavailable,
)
from beat_handover.routers.packaging import build_zip
from beat_handover.routers.route_format import (
    Rollout,
    Route,
    RouteChange,
    format_percent,
    new_route,
    side_from_url,
    side_to_dict,
)
from beat_handover.routers.route_store import (
    change_percent,
    create_route,
    dynamodb_client,
    get_route,
    history,
    list_routes,
    write_change,
)
from beat_handover.scheduler.durations import format_duration

ENDPOINT_NAMES = "the lock URL's ?region=, AWS_REGION and AWS_ENDPOINT_URL"
# Keys a packaged handler gets from the route and the lock URL; handler options may not set them.
DERIVED_KEYS = ("route", "table", "region", "cache_ttl_seconds", "fallback_side")
# A running rollout writes at the end of every bake; one silent this long past that is taken to
# be gone (its process killed, its host lost) and may be taken over with --take-over.
STALE_AFTER = timedelta(minutes=2)


@contextmanager
def route_errors(*, creating: bool = False) -> Iterator[None]:
    """The routers' errors as the toolkit's: a bad definition, an unknown route and
    (``creating``) one that exists already are the operator's to fix; a route changed by someone
    else meanwhile is a conflict to look at."""
    try:
        yield
    except (RouterConfigError, RouteNotFound) as exc:
        raise ConfigError(str(exc)) from None
    except MalformedRoute as exc:
        raise CorruptRecord(str(exc)) from None
    except RouteStoreMissing as exc:
        raise StoreMissing(str(exc)) from None
    except RouteStoreUnavailable as exc:
        raise StoreUnavailable(f"{exc} ({explain(exc, names=ENDPOINT_NAMES)})") from None
    except RouteConflict as exc:
        raise (ConfigError if creating else WriteConflict)(str(exc)) from None


class Routes:
    """The routes in the DynamoDB table of a connection's lock URL."""

    def __init__(self, connection: Connection) -> None:
        location = connection.settings().require_location()
        if location.backend != "dynamodb" or location.table is None:
            raise ConfigError(
                f"routes live in DynamoDB, where the Lambda handlers read them, but the lock URL "
                f"names {location.describe()}; give --lock-url dynamodb://TABLE?region=REGION"
            )
        try:
            self.client = dynamodb_client(location.region)
        except NoRegionError:
            raise ConfigError(
                f"no AWS region for table {location.table!r}: add ?region=REGION to the lock URL "
                "or set AWS_REGION"
            ) from None
        self.table = location.table

    @property
    def region(self) -> str:
        return self.client.meta.region_name

    def get(self, name: str) -> Route:
        with route_errors():
            return get_route(self.client, self.table, name)

    def all(self) -> list[Route]:
        with route_errors():
            return list_routes(self.client, self.table)

    def create(
        self,
        name: str,
        kind: str,
        urls: tuple[str, str],
        labels: tuple[str, str],
        *,
        cache_ttl_seconds: int,
        timeouts: Mapping[str, int],
        reason: str,
    ) -> Route:
        """Create route ``name`` at 0 %, old and new side from ``urls`` (with ``labels``)."""
        if timeouts and kind != "cloudfront":
            raise ConfigError(
                f"--read-timeout and --keepalive-timeout are for cloudfront routes; {name!r} is "
                f"a {kind} route"
            )
        who = operator()
        with route_errors(creating=True):
            old = side_from_url(kind, labels[0], urls[0], where="--old", **timeouts)
            new = side_from_url(kind, labels[1], urls[1], where="--new", **timeouts)
            route = new_route(name, kind, old, new, cache_ttl_seconds=cache_ttl_seconds)
            return create_route(
                self.client, self.table, route, reason=reason, actor=who.user, host=who.host
            )

    def change(
        self, name: str, percent: Decimal, *, action: str, reason: str
    ) -> tuple[Route, Route | None]:
        """Set route ``name`` to ``percent``: (before, after), after None if it already was.
        ``abort`` ends any rollout of the route; ``set`` ends a stopped one and is refused
        while one runs (the rollout owns the percentage then)."""
        who = operator()
        with route_errors():
            current = get_route(self.client, self.table, name)
            rollout = current.rollout
            if action != "abort" and rollout is not None and rollout.state == "running":
                raise ConfigError(
                    f"route {name!r} has a rollout running ({rollout.owner}); it sets the "
                    f"percentage: stop it with Ctrl-C where it runs, or send everything back "
                    f"with `handover route abort {name}`"
                )
            if current.percent == percent and rollout is None:
                return current, None
            if rollout is not None:
                reason = f"{reason}; ends the rollout" if reason else "ends the rollout"
            return change_percent(
                self.client,
                self.table,
                name,
                percent,
                action=action,
                reason=reason,
                actor=who.user,
                host=who.host,
                end_rollout=True,
            )

    def write(
        self, before: Route, percent: Decimal, rollout: Rollout | None, *, action: str, reason: str
    ) -> Route:
        """Write ``before`` with ``percent`` and ``rollout`` if nobody wrote it since it was
        read (WriteConflict otherwise), recorded as ``action`` by :func:`operator`."""
        who = operator()
        with route_errors():
            return write_change(
                self.client,
                self.table,
                before,
                percent=percent,
                rollout=rollout,
                action=action,
                reason=reason,
                actor=who.user,
                host=who.host,
            )

    def history(self, name: str, limit: int) -> list[RouteChange]:
        """The newest ``limit`` changes of route ``name``, which must exist."""
        with route_errors():
            get_route(self.client, self.table, name)
            return history(self.client, self.table, name, limit=limit)

    def package(
        self, name: str, out_dir: Path, options: Mapping[str, Any], *, options_from: str
    ) -> tuple[Path, Route, dict[str, Any]]:
        """Build the Lambda zip of route ``name``'s handler in ``out_dir``, its config derived
        from the route and the lock URL plus the handler ``options`` (read from
        ``options_from``); the zip's path, the route and the config baked in."""
        derived = sorted(set(options) & set(DERIVED_KEYS))
        if derived:
            raise ConfigError(
                f"{options_from} sets {', '.join(derived)}; those come from the route and the "
                "lock URL, leave them out"
            )
        found = self.get(name)
        config = {
            "route": name,
            "table": self.table,
            "region": self.region,
            "cache_ttl_seconds": found.cache_ttl_seconds,
            "fallback_side": side_to_dict(found.old),
            **options,
        }
        with route_errors():
            return build_zip(found.kind, config, out_dir), found, config


def route_json(route: Route) -> dict[str, Any]:
    sides = {"old": side_to_dict(route.old), "new": side_to_dict(route.new)}
    rollout = None
    if route.rollout is not None:
        rollout = {
            **asdict(route.rollout),
            "steps": [format_percent(step) for step in route.rollout.steps],
            "alarms": list(route.rollout.alarms),
            "next_step": None
            if route.rollout.next_step is None
            else format_percent(route.rollout.next_step),
        }
    return {
        **asdict(route),
        "percent": format_percent(route.percent),
        **sides,
        "rollout": rollout,
    }


def describe(route: Route) -> list[str]:
    """``route web (cloudfront): 10% to ecs, the rest to paas``, its sides and last change."""
    changed = history_time(datetime.fromisoformat(route.updated_at))
    return [
        f"route {route.name} ({route.kind}): {format_percent(route.percent)}% to "
        f"{route.new.label}, the rest to {route.old.label}",
        f"  old  {route.old.label:<8} {route.old.describe()}",
        f"  new  {route.new.label:<8} {route.new.describe()}",
        f"  version {route.version}, changed {changed} by {route.updated_by}"
        + (f": {route.reason}" if route.reason else ""),
        f"  cache TTL {format_duration(route.cache_ttl_seconds)}",
    ] + ([f"  rollout {rollout_summary(route.rollout)}"] if route.rollout else [])


def stale_at(rollout: Rollout) -> datetime:
    """When a running rollout that has not written since counts as gone."""
    since = datetime.fromisoformat(rollout.since)
    return since + timedelta(seconds=rollout.bake_seconds) + STALE_AFTER


def rollout_summary(rollout: Rollout, *, now: datetime | None = None) -> str:
    """``step 2/5 (5%), next 25% at 10:42Z; running, alice@ops-1`` for status and route show."""
    now = now or datetime.now(UTC)
    total = len(rollout.steps)
    where = (
        f"step {rollout.reached}/{total} ({format_percent(rollout.steps[rollout.reached - 1])}%)"
        if rollout.reached
        else f"starting, 0/{total} steps"
    )
    due = datetime.fromisoformat(rollout.since) + timedelta(seconds=rollout.bake_seconds)
    upcoming = rollout.next_step
    if rollout.state == "stopped":
        then = f"next {format_percent(upcoming)}%" if upcoming is not None else "last bake"
        return f"{where}, stopped (Ctrl-C) by {rollout.owner}; {then} on resume"
    then = f"next {format_percent(upcoming)}%" if upcoming is not None else "done"
    state = f"running, {rollout.owner}"
    if now > stale_at(rollout):
        state = f"SILENT since {due.strftime('%H:%MZ')} ({rollout.owner}): may be taken over"
    return f"{where}, {then} at {due.strftime('%H:%MZ')}; {state}"


@dataclass(frozen=True)
class RouteStatus:
    """A route as the overview shows it: since when it sends its percentage, and its last
    change (None when its history is empty)."""

    route: Route
    since: str | None  # ISO time of the change that set the current percentage, if in view
    last: RouteChange | None


def route_status(routes: Routes, route: Route, *, look_back: int = 20) -> RouteStatus:
    """``route`` with the time its percentage was set, from its newest ``look_back`` changes."""
    changes = routes.history(route.name, look_back)
    since = next(
        (
            change.at
            for change in changes
            if change.new_percent == route.percent and change.old_percent != route.percent
        ),
        None,
    )
    return RouteStatus(route, since, changes[0] if changes else None)


def route_status_json(status: RouteStatus) -> dict[str, Any]:
    return {
        **route_json(status.route),
        "percent_since": status.since,
        "rollout_summary": None
        if status.route.rollout is None
        else rollout_summary(status.route.rollout),
    }


def route_status_lines(status: RouteStatus, now: datetime) -> list[str]:
    """Two lines (three with a rollout) of at most 80 columns:

    ``web (cloudfront): 5% to ecs, the rest to paas, since 10:12:40Z``
    ``  last: rollout-step 10:12:40Z by alice@ops-1: step 2/5``
    ``  rollout: step 2/5 (5%), next 25% at 10:42Z; running, alice@ops-1``
    """
    route = status.route
    since = ""
    if status.since is not None:
        since = f", since {short_time(datetime.fromisoformat(status.since), now)}"
    lines = [
        f"  {route.name} ({route.kind}): {format_percent(route.percent)}% to {route.new.label}, "
        f"the rest to {route.old.label}{since}"
    ]
    last = status.last
    if last is not None:
        lines.append(
            f"    last: {last.action} {short_time(datetime.fromisoformat(last.at), now)} by "
            f"{last.actor}@{last.host}" + (f": {last.reason}" if last.reason else "")
        )
    if route.rollout is not None:
        lines.append(f"    rollout: {rollout_summary(route.rollout, now=now)}")
    return [line if len(line) <= 80 else line[:77] + "..." for line in lines]


def follow_note(route: Route) -> str:
    """When the handlers follow a change of ``route``."""
    note = (
        f"Every handler container follows within {format_duration(route.cache_ttl_seconds)} (the "
        "route's cache TTL)."
    )
    if route.kind == "cloudfront":
        note += (
            " CloudFront runs the router only on cache misses: responses it has cached keep "
            "coming from where they came from until they expire."
        )
    return note
