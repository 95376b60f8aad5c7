"""``handover route``: create, steer, inspect and package the percentage routers; a thin layer
over :mod:`beat_handover.handover.routes`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from beat_handover.handover.alarms import Alarms
from beat_handover.handover.cli.console import Console
from beat_handover.handover.cli.params import (
    BAKE,
    CACHE_TTL,
    DRAIN_TIMEOUT,
    INTERVAL,
    ORIGIN_TIMEOUT,
    Duration,
    connection_options,
    get_connection,
    json_option,
)
from beat_handover.handover.drain import Queues, drain_state, wait_for_drain
from beat_handover.handover.exit_codes import ExitCode
from beat_handover.handover.history import change_json, route_history_lines
from beat_handover.handover.rollouts import Outcome, Plan, RolloutRun, parse_steps_option
from beat_handover.handover.routes import Routes, describe, follow_note, route_errors, route_json
from beat_handover.routers.config import json_object
from beat_handover.routers.packaging import HANDLERS, sha256_of
from beat_handover.routers.route_format import (
    DEFAULT_CACHE_TTL_SECONDS,
    KINDS,
    format_percent,
    parse_percent,
)
from beat_handover.scheduler.durations import format_duration


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
    routes = Routes(get_connection())
    found_routes = [routes.get(name)] if name else routes.all()
    if as_json:
        click.echo(json.dumps([route_json(found) for found in found_routes], indent=2))
        return
    if not found_routes:
        click.echo(f"no routes in table {routes.table}; create one with `handover route create`")
    for found in found_routes:
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
    routes = Routes(get_connection())
    created = routes.create(
        name,
        kind,
        (old_url, new_url),
        (old_label, new_label),
        cache_ttl_seconds=int(cache_ttl),
        timeouts=timeouts,
        reason=reason,
    )
    click.echo(
        f"created route {name} in table {routes.table}, at 0%: everything goes to "
        f"{created.old.label}"
    )
    click.echo("\n".join(describe(created)[1:]))
    click.echo(
        f"Next: `handover route package {name} --out DIR`, deploy the zip, then "
        f"`handover route set {name} PERCENT`."
    )


def _change(name: str, percent: Decimal, *, action: str, reason: str) -> None:
    before, after = Routes(get_connection()).change(name, percent, action=action, reason=reason)
    if after is None:
        click.echo(
            f"route {name} already sends {format_percent(percent)}% to {before.new.label}; "
            "nothing written"
        )
        return
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


@route.command(name="rollout")
@click.argument("name")
@click.option(
    "--steps",
    metavar="P,P,...",
    help="Percentages to raise the route to in turn, rising, e.g. 1,5,25,50,100.",
)
@click.option(
    "--bake",
    type=Duration(BAKE),
    metavar="DURATION",
    help="How long each step holds, alarms quiet, before the next (and the last before the "
    "rollout ends). Needed with --steps.",
)
@click.option(
    "--abort-on-alarm",
    "alarms",
    multiple=True,
    metavar="ALARM",
    help="CloudWatch alarm whose ALARM state sets the route back to 0 % (repeatable).",
)
@click.option(
    "--allow-insufficient-data",
    is_flag=True,
    help="Do not abort on an alarm in INSUFFICIENT_DATA (by default it aborts, as AppConfig).",
)
@click.option(
    "--alarm-region",
    metavar="REGION",
    help="Region of the alarms (default: the lock URL's). CloudFront's metrics are in us-east-1.",
)
@click.option("--yes", is_flag=True, help="Allow a step that raises the share by over 50 points.")
@click.option(
    "--take-over",
    is_flag=True,
    help="Continue a rollout whose process went silent (its next write overdue by 2 minutes).",
)
@click.option("--no-color", is_flag=True, help="No colour, even on a terminal.")
@connection_options
def rollout(
    name: str,
    steps: str | None,
    bake: float | None,
    alarms: tuple[str, ...],
    allow_insufficient_data: bool,
    alarm_region: str | None,
    yes: bool,
    take_over: bool,
    no_color: bool,
) -> None:
    """Raise a route step by step, baking each step; abort on an alarm.

    Runs in the foreground. Each step is held for --bake while the alarms stay quiet; an alarm
    in ALARM (or INSUFFICIENT_DATA, unless --allow-insufficient-data) sets the route back to 0 %
    at once and exits 4. Ctrl-C leaves the route at its step; run the command again without
    --steps to resume. The rollout is kept in the route item: `handover status` shows it and
    a second rollout of the route is refused. Every step is in `handover route history`."""
    plan = None
    if steps is not None:
        if bake is None:
            raise click.UsageError("--steps needs --bake DURATION (how long each step holds)")
        plan = Plan(
            parse_steps_option(steps),
            int(bake),
            tuple(dict.fromkeys(alarms)),
            insufficient_data_aborts=not allow_insufficient_data,
        )
    elif bake is not None or alarms or allow_insufficient_data:
        raise click.UsageError(
            "--bake, --abort-on-alarm and --allow-insufficient-data go with --steps; to resume "
            f"a rollout, give none of them: handover route rollout {name}"
        )
    routes = Routes(get_connection())
    region = alarm_region or routes.region
    # A bake lasts minutes to hours: off a terminal, a line a minute is enough of a pulse.
    console = Console(no_color=no_color, plain_every_seconds=60.0)
    run = RolloutRun(
        routes,
        name,
        alarms_for=lambda chosen: Alarms(
            chosen.alarms,
            region=region,
            insufficient_data_aborts=chosen.insufficient_data_aborts,
        ),
        progress=console,
    )
    result = run.run(plan, yes=yes, take_over=take_over)
    if result.outcome is Outcome.DONE:
        console.line(result.message)
        return
    console.loud(result.message)
    raise click.exceptions.Exit(
        {
            Outcome.ABORTED: ExitCode.ROLLED_BACK,
            Outcome.STOPPED: ExitCode.INTERRUPTED,
            Outcome.HALTED: ExitCode.REFUSED,
        }[result.outcome]
    )


@route.command()
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait, showing progress, until the old side drains.")
@click.option(
    "--timeout",
    type=Duration(DRAIN_TIMEOUT),
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How long --wait waits before giving up (exit 3).",
)
@click.option(
    "--interval",
    type=Duration(INTERVAL),
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="How often --wait counts the queues.",
)
@json_option("One JSON object (after the wait, with --wait).")
@connection_options
def drain(name: str, wait: bool, timeout: float, interval: float, as_json: bool) -> None:
    """Has the old side of an SES-receipts route drained?

    Counts each side's SQS queue (waiting, in flight, delayed) and says whether the old side
    has drained: the route at 100 % for longer than its cache TTL and the old queue empty.
    Exits 0 when drained, 3 when not (with --wait: not within --timeout)."""
    routes = Routes(get_connection())
    queues = Queues(routes.region)
    console = Console(json_mode=as_json)
    if wait:
        state = wait_for_drain(
            routes, name, queues, timeout_seconds=timeout, every_seconds=interval, progress=console
        )
    else:
        state = drain_state(routes, name, queues)
    if as_json:
        click.echo(json.dumps(state.as_json(), indent=2))
    else:
        click.echo("\n".join(state.lines(datetime.now(UTC))))
    if not state.drained:
        if wait:
            console.loud(f"not drained within {format_duration(timeout)}")
        raise click.exceptions.Exit(ExitCode.REFUSED)


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
    changes = Routes(get_connection()).history(name, limit)
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
    options: dict[str, Any] = {}
    options_from = "--config"
    if config_file is not None:
        options_from = f"--config {config_file.name}"
        with route_errors():
            options = json_object(config_file.read(), source=options_from)
    routes = Routes(get_connection())
    path, found, config = routes.package(name, out_dir, options, options_from=options_from)
    click.echo(f"wrote {path} ({path.stat().st_size // 1024} KiB, sha256 {sha256_of(path)})")
    click.echo(f"handler: {HANDLERS[found.kind]}   runtime: python3.11 or newer")
    click.echo(
        f"its role needs dynamodb:GetItem on table {routes.table} in {routes.region}"
        + (" and sqs:SendMessage on both queues" if found.kind == "ses_receipts" else "")
    )
    if found.kind == "cloudfront":
        click.echo(
            "Lambda@Edge: create the function in us-east-1, publish a version and attach "
            "it to the distribution's origin-request event."
        )
    if "override_secret" in config:
        click.echo("The zip holds the override secret: store and share it as a secret.")
