"""``handover route``: create, steer, inspect and package the percentage routers.

Routes live in the DynamoDB table of the lock URL (the Lambda handlers read them there), as items
``route#NAME`` with an audit trail ``route-audit#NAME``; the item format is
``beat_handover.routers.route_format``'s alone. A route is created once with ``route create`` (at 0
%, both sides given as URLs); ``route set`` only changes the percentage of a route that exists, so a
typo in NAME is an error, never a new route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import NoRegionError

from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreMissing,
    StoreUnavailable,
    WriteConflict,
)
from beat_handover.beat_lock.unreachable import explain
from beat_handover.handover.cli.params import (
    CACHE_TTL,
    ORIGIN_TIMEOUT,
    Duration,
    connection_options,
    get_connection,
    json_option,
)
from beat_handover.handover.history import change_json, route_history_lines
from beat_handover.handover.instants import history_time
from beat_handover.handover.procedure.audit import operator
from beat_handover.routers.config import json_object
from beat_handover.routers.errors import (
    MalformedRoute,
    RouteConflict,
    RouteNotFound,
    RouterConfigError,
    RouteStoreMissing,
    RouteStoreUnavailable,
)
from beat_handover.routers.packaging import HANDLERS, build_zip, sha256_of
from beat_handover.routers.route_format import (
    DEFAULT_CACHE_TTL_SECONDS,
    KINDS,
    Route,
    format_percent,
    new_route,
    parse_percent,
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
)
from beat_handover.scheduler.durations import format_duration

ENDPOINT_NAMES = "the lock URL's ?region=, AWS_REGION and AWS_ENDPOINT_URL"
# Keys `route package` derives from the route and the lock URL; a --config file may not set them.
DERIVED_KEYS = ("route", "table", "region", "cache_ttl_seconds", "fallback_side")


@contextmanager
def route_errors(*, creating: bool = False) -> Iterator[None]:
    """The routers' errors as the toolkit's, so ``handover`` exits with its documented codes: a
    bad definition, an unknown route and (``creating``) one that exists already are the
    operator's to fix; a route changed by someone else meanwhile is a conflict to look at."""
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


def open_routes() -> tuple[Any, str]:
    """A DynamoDB client and the table of the lock URL; routes exist only in DynamoDB."""
    location = get_connection().settings().require_location()
    if location.backend != "dynamodb" or location.table is None:
        raise ConfigError(
            f"routes live in DynamoDB, where the Lambda handlers read them, but the lock URL "
            f"names {location.describe()}; give --lock-url dynamodb://TABLE?region=REGION"
        )
    try:
        return dynamodb_client(location.region), location.table
    except NoRegionError:
        raise ConfigError(
            f"no AWS region for table {location.table!r}: add ?region=REGION to the lock URL or "
            "set AWS_REGION"
        ) from None


def follow_note(route: Route) -> str:
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


def route_json(route: Route) -> dict[str, Any]:
    sides = {"old": side_to_dict(route.old), "new": side_to_dict(route.new)}
    return {**asdict(route), "percent": format_percent(route.percent), **sides}


def describe(route: Route) -> list[str]:
    changed = history_time(datetime.fromisoformat(route.updated_at))
    return [
        f"route {route.name} ({route.kind}): {format_percent(route.percent)}% to "
        f"{route.new.label}, the rest to {route.old.label}",
        f"  old  {route.old.label:<8} {route.old.describe()}",
        f"  new  {route.new.label:<8} {route.new.describe()}",
        f"  version {route.version}, changed {changed} by {route.updated_by}"
        + (f": {route.reason}" if route.reason else ""),
        f"  cache TTL {format_duration(route.cache_ttl_seconds)}",
    ]


@click.group(name="route")
@connection_options
def route() -> None:
    """Steer the percentage routers (CloudFront, SES receipts)."""


@route.command()
@click.argument("name", required=False)
@json_option("A JSON list of the routes, as stored.")
@connection_options
def show(name: str | None, as_json: bool) -> None:
    """Show one route, or every route in the table."""
    client, table = open_routes()
    with route_errors():
        routes = [get_route(client, table, name)] if name else list_routes(client, table)
    if as_json:
        click.echo(json.dumps([route_json(found) for found in routes], indent=2))
        return
    if not routes:
        click.echo(f"no routes in table {table}; create one with `handover route create`")
    for found in routes:
        click.echo("\n".join(describe(found)))


@route.command()
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="Which handler serves it.")
@click.option(
    "--old",
    "old_url",
    required=True,
    metavar="URL",
    help="Old side: origin URL (cloudfront) or SQS queue URL (ses_receipts).",
)
@click.option("--new", "new_url", required=True, metavar="URL", help="New side, as --old.")
@click.option("--old-label", default="paas", show_default=True, help="Name of the old side.")
@click.option("--new-label", default="ecs", show_default=True, help="Name of the new side.")
@click.option(
    "--cache-ttl",
    type=Duration(CACHE_TTL),
    default=f"{DEFAULT_CACHE_TTL_SECONDS}s",
    show_default=True,
    metavar="DURATION",
    help="How long handler containers cache the route.",
)
@click.option(
    "--read-timeout",
    type=Duration(ORIGIN_TIMEOUT),
    metavar="DURATION",
    help="Origin read timeout (cloudfront).",
)
@click.option(
    "--keepalive-timeout",
    type=Duration(ORIGIN_TIMEOUT),
    metavar="DURATION",
    help="Origin keep-alive timeout (cloudfront).",
)
@click.option("--reason", default="", help="Why, for the audit trail.")
@connection_options
def create(
    name: str,
    kind: str,
    old_url: str,
    new_url: str,
    old_label: str,
    new_label: str,
    cache_ttl: float,
    read_timeout: float | None,
    keepalive_timeout: float | None,
    reason: str,
) -> None:
    """Create a route at 0 % (everything to the old side)."""
    timeouts = {
        key: int(value)
        for key, value in (
            ("read_timeout_seconds", read_timeout),
            ("keepalive_timeout_seconds", keepalive_timeout),
        )
        if value is not None
    }
    if timeouts and kind != "cloudfront":
        raise ConfigError(
            f"--read-timeout and --keepalive-timeout are for cloudfront routes; {name!r} is a "
            f"{kind} route"
        )
    client, table = open_routes()
    with route_errors(creating=True):
        old = side_from_url(kind, old_label, old_url, where="--old", **timeouts)
        new = side_from_url(kind, new_label, new_url, where="--new", **timeouts)
        who = operator()
        created = create_route(
            client,
            table,
            new_route(name, kind, old, new, cache_ttl_seconds=int(cache_ttl)),
            reason=reason,
            actor=who.user,
            host=who.host,
        )
    click.echo(f"created route {name} in table {table}, at 0%: everything goes to {old.label}")
    click.echo("\n".join(describe(created)[1:]))
    click.echo(
        f"Next: `handover route package {name} --out DIR`, deploy the zip, then "
        f"`handover route set {name} PERCENT`."
    )


def _change(name: str, percent: Decimal, *, action: str, reason: str) -> None:
    client, table = open_routes()
    with route_errors():
        current = get_route(client, table, name)
        if current.percent == percent:
            click.echo(
                f"route {name} already sends {format_percent(percent)}% to "
                f"{current.new.label}; nothing written"
            )
            return
        who = operator()
        before, after = change_percent(
            client,
            table,
            name,
            percent,
            action=action,
            reason=reason,
            actor=who.user,
            host=who.host,
        )
    click.echo(
        f"route {name}: {format_percent(before.percent)}% -> {format_percent(after.percent)}% "
        f"to {after.new.label} (version {after.version})"
    )
    click.echo(follow_note(after))


@route.command(name="set", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("percent")
@click.option("--reason", default="", help="Why, for the audit trail.")
@connection_options
def set_percent(name: str, percent: str, reason: str) -> None:
    """Send PERCENT of traffic to the new side.

    PERCENT is from 0 to 100, with up to 4 decimals (0.1, 12.5)."""
    with route_errors():
        value = parse_percent(percent, source="PERCENT")
    _change(name, value, action="set", reason=reason)


@route.command()
@click.argument("name")
@click.option("--reason", default="", help="Why, for the audit trail.")
@connection_options
def abort(name: str, reason: str) -> None:
    """Send everything back to the old side at once (0 %)."""
    _change(name, Decimal(0), action="abort", reason=reason)


@route.command(name="history")
@click.argument("name")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="How many changes, newest first.",
)
@json_option("A JSON list of the changes.")
@connection_options
def show_history(name: str, limit: int, as_json: bool) -> None:
    """Who changed a route, when, and why.

    Newest first: when (UTC), the action, the percentage before and after, the version, who
    (user@host) and the reason."""
    client, table = open_routes()
    with route_errors():
        get_route(client, table, name)
        changes = history(client, table, name, limit=limit)
    if as_json:
        click.echo(json.dumps([change_json(change) for change in changes], indent=2))
    else:
        click.echo("\n".join(route_history_lines(changes)))


@route.command()
@click.argument("name")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write NAME-KIND.zip into.",
)
@click.option(
    "--config",
    "config_file",
    type=click.File("r"),
    help="JSON object of handler options (sticky_cookie, override_secret, task_name...).",
)
@connection_options
def package(name: str, out_dir: Path, config_file: Any) -> None:
    """Build the Lambda zip of a route's handler.

    The route's config (table, region, cache TTL, fallback side) is baked in, with the handler
    options of --config."""
    extra: dict[str, Any] = {}
    if config_file is not None:
        with route_errors():
            extra = json_object(config_file.read(), source=f"--config {config_file.name}")
        derived = sorted(set(extra) & set(DERIVED_KEYS))
        if derived:
            raise ConfigError(
                f"--config {config_file.name} sets {', '.join(derived)}; those come from the "
                "route and the lock URL, leave them out"
            )
    client, table = open_routes()
    with route_errors():
        found = get_route(client, table, name)
        config = {
            "route": name,
            "table": table,
            "region": client.meta.region_name,
            "cache_ttl_seconds": found.cache_ttl_seconds,
            "fallback_side": side_to_dict(found.old),
            **extra,
        }
        path = build_zip(found.kind, config, out_dir)
    click.echo(f"wrote {path} ({path.stat().st_size // 1024} KiB, sha256 {sha256_of(path)})")
    click.echo(f"handler: {HANDLERS[found.kind]}   runtime: python3.11 or newer")
    click.echo(
        f"its role needs dynamodb:GetItem on table {table} in {client.meta.region_name}"
        + (" and sqs:SendMessage on both queues" if found.kind == "ses_receipts" else "")
    )
    if found.kind == "cloudfront":
        click.echo(
            "Lambda@Edge: create the function in us-east-1, publish a version and attach "
            "it to the distribution's origin-request event."
        )
    if "override_secret" in config:
        click.echo("The zip holds the override secret: store and share it as a secret.")
