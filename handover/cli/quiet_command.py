"""``handover quiet-windows``: when is it safe to move beat?"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.app_schedule import load_app_schedule
from beat_handover.handover.cli.params import (
    MIN_LENGTH,
    QUIET_GUARD,
    Duration,
    connection_options,
    get_connection,
    json_option,
)
from beat_handover.handover.quiet_page import render_page
from beat_handover.handover.quiet_period import resolve_period
from beat_handover.handover.quiet_table import render_table
from beat_handover.scheduler import quiet


@click.command(name="quiet-windows")
@connection_options
@click.option(
    "--from",
    "start_text",
    metavar="ISO",
    help="Start of the period, ISO 8601; without an offset it is the app's local time.",
)
@click.option("--to", "end_text", metavar="ISO", help="End of the period (with --from).")
@click.option(
    "--date", "date_text", metavar="YYYY-MM-DD", help="One whole local day in the app's time zone."
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=366),
    help="Length of the period in days, from --from or from now (default 1).",
)
@click.option(
    "--critical",
    multiple=True,
    metavar="NAME_OR_GLOB",
    help="A critical entry, by name or glob; repeat for more. Default: the app's "
    "beat_lock_critical.",
)
@click.option(
    "--guard",
    type=Duration(QUIET_GUARD),
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Time kept clear before and after each critical run (90s, 10m, 1h30m).",
)
@click.option(
    "--min-length",
    type=Duration(MIN_LENGTH),
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="Shortest window worth reporting.",
)
@json_option("Print JSON for tools instead of a table.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Also write the period as a timeline to FILE: one self-contained HTML page (no "
    "network), a row per day.",
)
def quiet_windows(
    start_text: str | None,
    end_text: str | None,
    date_text: str | None,
    days: int | None,
    critical: tuple[str, ...],
    guard: float,
    min_length: float,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """When is it safe to move beat?

    The windows with no critical run near them, long enough to move beat, with the count of
    other runs in each.

    Crontab entries are computed in the app's time zone, with the daylight saving rules beat
    follows; interval entries are placed from their last claimed slot in the lease store.
    Exits 3 if a critical entry cannot be placed (an interval entry with no claimed slot yet,
    or a schedule type that is not supported).
    """
    app_schedule = load_app_schedule(get_connection())
    start, end = resolve_period(
        app_schedule.tz,
        datetime.now(UTC),
        start_text=start_text,
        end_text=end_text,
        date_text=date_text,
        days=days,
    )
    patterns = critical if critical else app_schedule.critical
    if not patterns:
        raise ConfigError(
            "no critical entries: name them with --critical NAME_OR_GLOB or set "
            "beat_lock_critical; " + quiet.describe_names(sorted(app_schedule.schedules), near="")
        )
    report = quiet.quiet_windows(
        app_schedule.schedules,
        patterns,
        start,
        end,
        tz=app_schedule.tz,
        guard=timedelta(seconds=guard),
        min_length=timedelta(seconds=min_length),
        anchors=app_schedule.anchors,
    )
    if html_path is not None:
        write_page(html_path, render_page(report, generated=datetime.now(UTC)))
        click.echo(
            f"Wrote the timeline of {len(report.windows)} quiet windows to {html_path}", err=True
        )
    if as_json:
        document = report.to_dict()
        document["phase_unknown_reason"] = (
            app_schedule.phase_unknown_reason if report.phase_unknown else None
        )
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(render_table(report, phase_unknown_reason=app_schedule.phase_unknown_reason))


def write_page(path: Path, page: str) -> None:
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"--html {path}: cannot write the page ({exc.strerror}); give a file in a "
            "directory you can write to"
        ) from None
