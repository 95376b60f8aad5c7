"""The commands about the lock itself: ``handover status``, ``handover history`` and
``handover init``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click

from beat_handover.beat_lock.errors import BeatLockError, StoreUnavailable
from beat_handover.handover.app_schedule import load_app_schedule
from beat_handover.handover.cli.params import (
    INTERVAL,
    Duration,
    connection_options,
    get_connection,
    json_option,
)
from beat_handover.handover.exit_codes import ExitCode
from beat_handover.handover.history import event_json, lock_history_lines
from beat_handover.handover.instants import clock_time
from beat_handover.handover.lock_status import (
    Overview,
    missing_lock_line,
    overview_json,
    overview_lines,
    take_overview,
)
from beat_handover.handover.lock_table import init_table
from beat_handover.scheduler.durations import format_duration


@click.command()
@connection_options
@json_option("One JSON object (JSON lines with --watch).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    type=Duration(INTERVAL),
    default="2s",
    show_default=True,
    metavar="DURATION",
    help="How often --watch refreshes.",
)
def status(as_json: bool, watch: bool, interval: float) -> None:
    """Every entry point at a glance: beat's lock and every route.

    Beat: who leads, the token, the pin, the participants of each environment, the last runs,
    late runs (with -A), what needs attention, recent handovers. Each route: its percentage,
    sides, since when, its last change and any rollout under way. Once, as JSON, or refreshed
    until Ctrl-C. A lock name never acquired in the store exits 2, naming the locks it holds."""
    connection = get_connection()
    schedule, late_unknown = None, ""
    if connection.load_app() is not None:
        try:
            schedule = load_app_schedule(connection)
        except BeatLockError as exc:
            late_unknown = f"the app's schedule could not be read: {exc}"

    def take() -> Overview:
        return take_overview(connection, schedule=schedule, late_unknown=late_unknown)

    if watch:
        watch_overview(take, as_json=as_json, interval_seconds=interval)
        return
    overview = take()
    if as_json:
        click.echo(json.dumps(overview_json(overview), indent=2))
    else:
        click.echo("\n".join(overview_lines(overview)))
    if overview.beat.record is None:
        click.echo(f"Error: {missing_lock_line(overview.beat)}", err=True)
        raise click.exceptions.Exit(ExitCode.USAGE)


def watch_overview(
    take: Callable[[], Overview],
    *,
    as_json: bool,
    interval_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Refresh until Ctrl-C: a redrawn screen on a terminal, else one block (or JSON line) per
    refresh. A silent store is shown, not fatal: watching is how one sees it come back."""
    tty = sys.stdout.isatty()
    try:
        while True:
            try:
                overview = take()
            except StoreUnavailable as exc:
                text = f"{clock_time(datetime.now(UTC))}: the store did not answer ({exc})"
                click.echo(json.dumps({"error": str(exc)}) if as_json else text)
            else:
                if as_json:
                    click.echo(json.dumps(overview_json(overview)))
                else:
                    if tty:
                        click.clear()
                    click.echo("\n".join(overview_lines(overview)))
                    click.echo(
                        f"(refreshing every {format_duration(interval_seconds)}; Ctrl-C to stop)"
                        if tty
                        else ""
                    )
            sleep(interval_seconds)
    except KeyboardInterrupt:
        click.echo("")


@click.command()
@connection_options
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=20,
    show_default=True,
    help="How many events, newest first.",
)
@json_option("A JSON list of events.")
def history(limit: int, as_json: bool) -> None:
    """The lock's history: handovers, pins, roll-backs.

    Newest first, fall-backs too: when (UTC), what, the result, who (user@host) and the
    details."""
    connection = get_connection()
    events = connection.store().events(connection.settings().name, limit)
    if as_json:
        click.echo(json.dumps([event_json(event) for event in events], indent=2))
    elif not events:
        click.echo("No handovers or pins recorded for this lock yet.")
    else:
        click.echo("\n".join(lock_history_lines(events)))


@click.command()
@connection_options
@click.option(
    "--account-id",
    metavar="ID",
    help="AWS account id for the policies' table ARN (default: asked of AWS STS).",
)
def init(account_id: str | None) -> None:
    """Create the DynamoDB lock table; print the IAM policies.

    Safe to run again: an existing table is left as it is. The policies (least privilege) are
    for a beat, an operator, a worker (once-per-slot guard) and a router Lambda; they go to
    stdout, progress to stderr, so `handover init > policies.json` keeps only the JSON.
    """
    settings = get_connection().settings()
    policies = init_table(settings, account_id=account_id, say=lambda t: click.echo(t, err=True))
    if policies is not None:
        click.echo(json.dumps(policies, indent=2))
