"""The ``handover`` group and its own command, ``handover --to ENV``: the thin layer between the
command line and :func:`beat_handover.handover.procedure.flow.hand_over`.

The library's base error (:class:`~beat_handover.beat_lock.errors.BeatLockError`) is caught once,
at the top, and turned into one clear line and a documented exit code: by
:func:`beat_handover.handover.cli.main` for the ``handover`` script, and by the group itself when
it runs under Celery's command line (which would print a traceback).
"""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
from click.core import ParameterSource

from beat_handover.beat_lock.errors import BeatLockError
from beat_handover.handover.cli.console import Console
from beat_handover.handover.cli.params import (
    GUARD,
    TIMEOUT,
    Duration,
    connection_options,
    environment,
    get_connection,
    json_option,
)
from beat_handover.handover.exit_codes import ExitCode, exit_code_for
from beat_handover.handover.procedure.flow import hand_over
from beat_handover.handover.procedure.model import HandoverRequest
from beat_handover.handover.procedure.outlook import outlook_for

WIDTH = 80
HANDOVER_OPTIONS = ("target", "force", "dry_run", "guard", "timeout", "as_json")
INTRO = """Move Celery beat between environments safely, and steer the percentage routers.

\b
  handover --to ecs          check, announce, pin to ecs, confirm, report
  handover status [--watch]  beat and every route at a glance
  handover history           the lock's history: handovers, pins, roll-backs
  handover init              create the lock table, print the IAM policies
  handover quiet-windows     when it is safe to move beat: no critical run
  handover route ...         steer the routers: set, rollout, drain

Connection options (-A/--app, --lock-url, --lock-name) work before or after a command.
Durations are written 90s, 10m or 1h30m; a bare number is seconds, except for --guard and
--min-length, which need the unit.
"""


def exit_codes_help() -> str:
    """The exit codes of ``handover``, from :class:`ExitCode`, fitted to 80 columns."""
    lines = ["\b", "Exit codes:"]
    for code in ExitCode:
        if code is ExitCode.DEMO_FAILED:
            continue
        lines += textwrap.wrap(
            code.meaning, WIDTH - 4, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7
        )
    return "\n".join(lines)


def package_version() -> str:
    try:
        return version("beat-handover")
    except PackageNotFoundError:
        return "unknown (not installed)"


class HandoverGroup(click.Group):
    """The ``handover`` group. Under ``celery handover`` it is not the top of the command line,
    so it ends library errors itself; as the ``handover`` script, ``main`` does."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BeatLockError as exc:
            if ctx.parent is None:
                raise
            raise click.exceptions.Exit(report_error(exc)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None


def report_error(exc: BeatLockError) -> ExitCode:
    """Print ``Error: ...`` (the message says what was wrong and what to do); the exit code."""
    click.echo(f"Error: {exc}", err=True)
    return exit_code_for(exc)


@click.group(
    name="handover",
    cls=HandoverGroup,
    invoke_without_command=True,
    help=f"{INTRO}\n{exit_codes_help()}",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": WIDTH},
)
@click.version_option(package_version(), prog_name="handover", message="%(prog)s %(version)s")
@connection_options
@click.option(
    "--to",
    "target",
    metavar="ENV",
    callback=environment,
    help="Environment to move beat to, e.g. ecs or paas.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Go ahead although a critical entry fired or fires within the guard (still printed).",
)
@click.option("--dry-run", is_flag=True, help="Run the preflight only; change nothing.")
@click.option(
    "--guard",
    type=Duration(GUARD),
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Refuse if a critical entry fires this soon (10m, 1h; 0 = no check).",
)
@click.option(
    "--timeout",
    type=Duration(TIMEOUT),
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Roll back if the target has not taken over after this long.",
)
@json_option("Print one JSON object with the report (progress goes to stderr).")
@click.option(
    "--no-color",
    is_flag=True,
    help="No colour, even on a terminal (as does a non-empty NO_COLOR variable).",
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
    no_color: bool,
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
    console = Console(json_mode=as_json, no_color=no_color)
    report = hand_over(
        connection.store(),
        settings.name,
        request,
        outlook=outlook_for(connection, guard_seconds=guard, window_seconds=timeout),
        progress=console,
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    elif report.exit_code is ExitCode.NEEDS_A_PERSON:
        for line in report.lines():
            console.loud(line)
    else:
        for line in report.lines():
            console.line(line)
    ctx.exit(report.exit_code)
