"""``handover quiet-windows``: when is it safe to move beat? And what the handover preflight reads
from the app to ask the same question (:func:`load_app_schedule`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from beat_handover.beat_lock.errors import ConfigError, StoreMissing, StoreUnavailable
from beat_handover.handover.connection import Connection, connection_options, get_connection
from beat_handover.handover.quiet_table import render_table
from beat_handover.scheduler import quiet
from beat_handover.scheduler.durations import parse_duration
from beat_handover.scheduler.quiet import DEFAULT_HORIZON, CriticalRun, QuietWindow

MAX_PERIOD = timedelta(days=366)
ISO_EXAMPLES = "2026-03-29T01:00, 2026-03-29T01:00+01:00 or 2026-03-29T00:00Z"


@dataclass(frozen=True)
class AppSchedule:
    """What the quiet-window maths needs from an app: its entries, time zone, critical entries
    (``beat_lock_critical``) and the interval anchors read from the lease store."""

    schedules: Mapping[str, Any]  # entry name -> schedule
    tz: tzinfo
    critical: tuple[str, ...]
    anchors: Mapping[str, datetime]  # entry name -> last claimed slot
    anchors_unknown: str | None  # why no claims could be read; None when the store answered

    @property
    def phase_unknown_reason(self) -> str:
        """Why an interval entry without an anchor has one: no store, or no claim yet."""
        if self.anchors_unknown is not None:
            return self.anchors_unknown
        return "the lease store has no claimed slot for them yet"

    def next_critical_run(
        self, now: datetime, critical: Sequence[str] | None = None
    ) -> CriticalRun | None:
        """The first critical run after `now` (`critical` defaults to beat_lock_critical)."""
        chosen = self.critical if critical is None else critical
        return quiet.next_critical_run(
            self.schedules, chosen, now, tz=self.tz, anchors=self.anchors
        )

    def next_quiet_window(
        self,
        now: datetime,
        *,
        guard: timedelta,
        min_length: timedelta,
        critical: Sequence[str] | None = None,
        horizon: timedelta = DEFAULT_HORIZON,
    ) -> QuietWindow | None:
        """The first quiet window from `now` on, within `horizon` (see
        beat_handover.scheduler.quiet)."""
        chosen = self.critical if critical is None else critical
        return quiet.next_quiet_window(
            self.schedules,
            chosen,
            now,
            tz=self.tz,
            guard=guard,
            min_length=min_length,
            anchors=self.anchors,
            horizon=horizon,
        )


def load_app_schedule(connection: Connection) -> AppSchedule:
    """Read the beat schedule, time zone and critical entries of the connection's app, and the
    claimed slots from the lease store when ``beat_lock_url`` is set and the store answers."""
    app = connection.load_app()
    if app is None:
        raise ConfigError(
            "no Celery app given: name it with -A, e.g. handover -A proj quiet-windows"
        )
    settings = connection.settings()
    beat_schedule = app.conf.beat_schedule
    if beat_schedule is None:
        beat_schedule = {}
    if not isinstance(beat_schedule, Mapping):
        raise ConfigError(
            f"app.conf.beat_schedule must map entry names to entries, got {beat_schedule!r}"
        )
    schedules = quiet.entry_schedules(beat_schedule)
    if settings.location is None:
        anchors: dict[str, datetime] = {}
        unknown: str | None = "beat_lock_url is not set, so no claimed slots could be read"
    else:
        try:
            record = connection.store().read(settings.name)
        except (StoreUnavailable, StoreMissing) as exc:
            anchors, unknown = {}, f"the lease store could not be read: {exc}"
        else:
            claims = record.claims if record is not None else {}
            anchors = {entry: claim.slot for entry, claim in claims.items()}
            unknown = None
    return AppSchedule(schedules, app_timezone(app), settings.critical, anchors, unknown)


def app_timezone(app: Any) -> tzinfo:
    """The zone beat computes crontabs in: ``app.conf.timezone``, UTC when it is not set."""
    name = app.conf.timezone
    if name is None:
        if app.conf.enable_utc is False:
            raise ConfigError(
                "app.conf.timezone is not set and enable_utc is off, so beat uses this "
                "machine's local time; set app.conf.timezone (e.g. Europe/London) so the report "
                "computes in the zone beat uses"
            )
        return UTC
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"app.conf.timezone {name!r} is not a time zone name such as Europe/London or UTC"
        ) from None


def resolve_period(
    tz: tzinfo,
    now: datetime,
    *,
    start_text: str | None,
    end_text: str | None,
    date_text: str | None,
    days: int | None,
) -> tuple[datetime, datetime]:
    """The period the options name: --date D (that local day), --from A [--to B | --days N],
    or --days N from now (default: the next day)."""
    if date_text is not None:
        if start_text is not None or end_text is not None or days is not None:
            raise ConfigError(
                "--date names a whole day; do not combine it with --from, --to or --days"
            )
        try:
            day = date.fromisoformat(date_text.strip())
        except ValueError:
            raise ConfigError(f"--date {date_text!r} is not a date such as 2026-03-29") from None
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        after = day + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz)
    else:
        if end_text is not None and start_text is None:
            raise ConfigError("--to needs --from (or use --date or --days)")
        if end_text is not None and days is not None:
            raise ConfigError("give either --to or --days with --from, not both")
        start = now if start_text is None else _parse_time(start_text, "--from", tz)
        if end_text is not None:
            end = _parse_time(end_text, "--to", tz)
        else:
            end = start + timedelta(days=1 if days is None else days)
    # As instants: Python compares datetimes sharing a tzinfo by their wall clocks.
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    if end_utc <= start_utc:
        raise ConfigError(
            f"the period ends ({end.isoformat()}) before or when it starts "
            f"({start.isoformat()}); give a --to later than --from"
        )
    if end_utc - start_utc > MAX_PERIOD:
        raise ConfigError(
            f"the period is {end_utc - start_utc} long; ask about at most 366 days at once"
        )
    return start_utc, end_utc


def _parse_time(text: str, option: str, tz: tzinfo) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time such as {ISO_EXAMPLES}"
        ) from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


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
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Time kept clear before and after each critical run (90s, 10m, 1h30m).",
)
@click.option(
    "--min-length",
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="Shortest window worth reporting.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for tools instead of a table.")
def quiet_windows(
    start_text: str | None,
    end_text: str | None,
    date_text: str | None,
    days: int | None,
    critical: tuple[str, ...],
    guard: str,
    min_length: str,
    as_json: bool,
) -> None:
    """When is it safe to move beat? The windows with no critical run near them, long enough to
    move beat, with the count of other runs in each.

    Crontab entries are computed in the app's time zone, with the daylight saving rules beat
    follows; interval entries are placed from their last claimed slot in the lease store.

    Exit codes: 0 report printed; 2 bad option or app; 3 a critical entry cannot be placed (an
    interval entry with no claimed slot yet, or a schedule type that is not supported).
    """
    guard_length = parse_duration(guard, option="--guard")
    min_window = parse_duration(min_length, option="--min-length")
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
        guard=guard_length,
        min_length=min_window,
        anchors=app_schedule.anchors,
    )
    if as_json:
        document = report.to_dict()
        document["phase_unknown_reason"] = (
            app_schedule.phase_unknown_reason if report.phase_unknown else None
        )
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(render_table(report, phase_unknown_reason=app_schedule.phase_unknown_reason))
