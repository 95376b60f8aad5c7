"""The operator's command line: ``handover`` (and ``celery -A proj handover``).

One click group serves both entry points. The library's base error
(:class:`~beat_handover.beat_lock.errors.BeatLockError`) is caught once, at the top, and turned
into one clear line and a documented exit code: by :func:`main` for the ``handover`` script, and
by the group itself when it runs under Celery's command line (which would print a traceback).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from click.core import ParameterSource

from beat_handover.beat_lock.errors import BeatLockError, ConfigError, StoreMissing
from beat_handover.beat_lock.identity import validate_environment
from beat_handover.handover import lock_status as status_view
from beat_handover.handover.app_schedule import quiet_windows
from beat_handover.handover.cli.console import Console
from beat_handover.handover.cli.route_commands import route
from beat_handover.handover.connection import connection_options, get_connection
from beat_handover.handover.instants import Duration
from beat_handover.handover.lock_table import init_table
from beat_handover.handover.procedure.audit import event_json, event_line
from beat_handover.handover.procedure.flow import HandoverRequest, hand_over
from beat_handover.handover.procedure.model import EXIT_REFUSED, EXIT_ROLLBACK_FAILED, EXIT_USAGE
from beat_handover.handover.procedure.outlook import outlook_for

EXIT_INTERRUPTED = 130
HANDOVER_OPTIONS = ("target", "force", "dry_run", "guard", "timeout", "as_json")

HELP = """Move Celery beat between environments safely, and steer the percentage routers.

\b
  handover --to ecs            check, announce, pin beat to ecs, confirm ecs leads, report
  handover status [--watch]    who leads, the pin, live participants, recent handovers
  handover history             the audit log of handovers, pins and roll-backs
  handover init                create the lock table, print least-privilege IAM policies
  handover quiet-windows       when it is safe to move beat: no critical run near
  handover route ...           steer the percentage routers (CloudFront, SES receipts)

Connection options (-A/--app, --lock-url, --lock-name) work before or after a command.

\b
Exit codes:
  0    done, or nothing to do (also a dry run whose preflight passed)
  2    usage or configuration error (including: the lock table does not exist)
  3    refused by preflight, or the store could not be reached: nothing was changed
  4    the target did not take over in time; rolled back, the previous environment leads
  5    the roll-back failed, or the lease is not in the state expected: a person must look
  130  interrupted (Ctrl-C) before the pin (an announced handover is withdrawn), or in
       another command
"""


class HandoverGroup(click.Group):
    """The ``handover`` group. Under ``celery handover`` it is not the top of the command line,
    so it ends library errors itself; as the ``handover`` script, :func:`main` does."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BeatLockError as exc:
            if ctx.parent is None:
                raise
            raise click.exceptions.Exit(report_error(exc)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def exit_code_for(exc: BeatLockError) -> int:
    """2 for what the user must fix (configuration, a missing table), 3 for everything else."""
    return EXIT_USAGE if isinstance(exc, ConfigError | StoreMissing) else EXIT_REFUSED


def report_error(exc: BeatLockError) -> int:
    """Print ``Error: ...`` (the message says what was wrong and what to do); the exit code."""
    click.echo(f"Error: {exc}", err=True)
    return exit_code_for(exc)


def _environment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_environment(value, setting="--to")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--to ")) from None


@click.group(
    name="handover",
    cls=HandoverGroup,
    invoke_without_command=True,
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@connection_options
@click.option(
    "--to",
    "target",
    metavar="ENV",
    callback=_environment,
    help="Environment to move beat to, e.g. ecs or paas.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Go ahead although a critical entry fires within the guard (still printed).",
)
@click.option("--dry-run", is_flag=True, help="Run the preflight only; change nothing.")
@click.option(
    "--guard",
    type=Duration(allow_zero=True),
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Refuse if a critical entry fires this soon (e.g. 10m, 1h; 0 = no check).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Roll back if the target has not taken over after this long.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object with the report (progress goes to stderr).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    target: str | None,
    force: bool,
    dry_run: bool,
    guard: float,
    timeout: float,
    as_json: bool,
) -> None:
    connection = get_connection(ctx)
    celery_app = getattr(ctx.obj, "app", None)
    if celery_app is not None and connection.app_spec is None and connection.app is None:
        connection.app = celery_app
    if ctx.invoked_subcommand is not None:
        given = [
            param.opts[0]
            for param in ctx.command.params
            if param.name in HANDOVER_OPTIONS
            and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)}: options of the handover itself (handover --to ENV ...) "
                f"cannot be combined with the command {ctx.invoked_subcommand!r}"
            )
        return
    if target is None:
        raise click.UsageError(
            "say where beat should go with --to ENV (e.g. handover --to ecs), or give a "
            "command such as status; see handover --help"
        )
    settings = connection.settings()
    request = HandoverRequest(
        target=target,
        guard_seconds=guard,
        timeout_seconds=timeout,
        poll_seconds=settings.timings.poll_seconds,
        force=force,
        dry_run=dry_run,
    )
    console = Console(json_mode=as_json)
    report = hand_over(
        connection.store(),
        settings.name,
        request,
        outlook=outlook_for(connection, guard_seconds=guard, window_seconds=timeout),
        console=console,
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    elif report.exit_code == EXIT_ROLLBACK_FAILED:
        for line in report.lines():
            console.loud(line)
    else:
        for line in report.lines():
            console.line(line)
    ctx.exit(report.exit_code)


@cli.command()
@connection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object (JSON lines with --watch).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    type=Duration(),
    default="2s",
    show_default=True,
    metavar="DURATION",
    help="How often --watch refreshes.",
)
def status(as_json: bool, watch: bool, interval: float) -> None:
    """Who leads, token, lease age, pin, live participants per environment, recent handovers."""
    connection = get_connection()
    store, name = connection.store(), connection.settings().name
    if watch:
        status_view.watch(store, name, as_json=as_json, interval_seconds=interval)
    else:
        status_view.show(store, name, as_json=as_json)


@cli.command()
@connection_options
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=20,
    show_default=True,
    help="How many events, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of events.")
def history(limit: int, as_json: bool) -> None:
    """The audit log of handovers, pins and roll-backs: who, from which host, when, result."""
    connection = get_connection()
    events = connection.store().events(connection.settings().name, limit)
    if as_json:
        click.echo(json.dumps([event_json(event) for event in events], indent=2))
    elif not events:
        click.echo("No handovers or pins recorded for this lock yet.")
    else:
        click.echo("\n".join(event_line(event) for event in events))


@cli.command()
@connection_options
@click.option(
    "--account-id",
    metavar="ID",
    help="AWS account id for the policies' table ARN (default: asked of AWS STS).",
)
def init(account_id: str | None) -> None:
    """Create the DynamoDB lock table (idempotent) and print the IAM policies as JSON.

    The policies (least privilege) are for a beat, an operator, a worker (once-per-slot guard)
    and a router Lambda; they go to stdout, progress to stderr, so `handover init >
    policies.json` keeps only the JSON.
    """
    settings = get_connection().settings()
    policies = init_table(settings, account_id=account_id, say=lambda t: click.echo(t, err=True))
    if policies is not None:
        click.echo(json.dumps(policies, indent=2))


cli.add_command(quiet_windows)
cli.add_command(route)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click ends usage errors (exit 2), this the library's errors."""
    try:
        cli.main(args=argv, prog_name="handover")
    except BeatLockError as exc:
        sys.exit(report_error(exc))
