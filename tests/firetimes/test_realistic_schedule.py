"""The realistic 31-entry schedule of ``quietapp`` gives the windows a person would expect:
billing at 02:00 and letters at 17:30 on weekdays, each kept clear for 10 minutes either side."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import BaseSchedule, solar

from beat_handover.handover.quiet_table import render_table
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.quiet import (
    QuietReport,
    next_critical_run,
    next_quiet_window,
    quiet_windows,
)
from tests.firetimes.quietapp import app

LONDON = ZoneInfo("Europe/London")
SCHEDULE = app.conf.beat_schedule
CRITICAL = app.conf.beat_lock_critical
GUARD = timedelta(minutes=10)
MIN_LENGTH = timedelta(minutes=15)
# Anchors as the lease store would hold them (each interval entry's last claimed slot).
ANCHORS = {
    "heartbeat": datetime(2026, 6, 1, tzinfo=UTC),  # every 30 s, on the minute and half minute
    "queue-depth": datetime(2026, 6, 1, tzinfo=UTC),  # every minute, on the minute
    "cache-stats": datetime(2026, 6, 16, 23, 2, 30, tzinfo=UTC),  # every 5 min, at mm:02:30...
    "token-refresh": datetime(2026, 6, 16, 23, 0, tzinfo=UTC),  # every 45 min
    "reconcile-ledger": datetime(2026, 6, 16, 18, 0, tzinfo=UTC),  # 00, 06, 12, 18 UTC
}


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


def report_for(day: date, critical=CRITICAL, anchors=ANCHORS) -> QuietReport:
    return quiet_windows(
        SCHEDULE,
        critical,
        local(day, 0),
        local(day + timedelta(1), 0),
        tz=LONDON,
        guard=GUARD,
        min_length=MIN_LENGTH,
        anchors=anchors,
    )


def spans(report: QuietReport) -> list[tuple[str, str]]:
    """Windows as local 'HH:MM' pairs (24:00 for the next midnight)."""

    def hhmm(at: datetime) -> str:
        moment = at.astimezone(report.tz)
        return "24:00" if moment == report.end else moment.strftime("%H:%M")

    return [(hhmm(window.start), hhmm(window.end)) for window in report.windows]


def test_a_wednesday_has_three_windows_around_billing_and_letters() -> None:
    wednesday = date(2026, 6, 17)
    report = report_for(wednesday)
    assert spans(report) == [("00:00", "01:50"), ("02:10", "17:20"), ("17:40", "24:00")]
    assert [
        (run.entry, run.at.astimezone(LONDON).strftime("%H:%M")) for run in report.critical_runs
    ] == [("billing-nightly", "02:00"), ("letters-weekday", "17:30")]
    assert report.critical == ("billing-nightly", "letters-weekday")
    assert report.phase_unknown == () and report.unsupported == ()
    # 00:00-01:50 BST (23:00-00:50 UTC), ends included, counted by hand:
    crontabs = (
        5 * 111  # five every-minute checks, 00:00 to 01:50
        + 3 * 8  # three */15 jobs: 00:00, :15, :30, :45, 01:00, :15, :30, :45
        + 8
        + 7
        + 7  # refresh-search :05/20/35/50; expire-sessions and reindex lose 01:55, 01:52
        + 4 * 2  # four hourly jobs, twice each
        + 1  # stats-daily at 00:05
    )
    intervals = (
        221  # heartbeat every 30 s, 23:00:00 to 00:50:00 UTC
        + 111  # queue-depth every minute
        + 22  # cache-stats 23:02:30 to 00:47:30
        + 3  # token-refresh 23:00, 23:45, 00:30
        + 1  # reconcile-ledger 00:00 UTC
    )
    assert report.windows[0].noncritical_runs == crontabs + intervals == 968
    assert report.windows[0].length == timedelta(hours=1, minutes=50)


def test_a_saturday_has_no_letters_run() -> None:
    assert spans(report_for(date(2026, 6, 20))) == [("00:00", "01:50"), ("02:10", "24:00")]


def test_the_spring_change_day_moves_billing_to_the_end_of_the_gap() -> None:
    """02:00 exists on 29 March 2026 (it is the end of the gap), so billing runs at 02:00 BST =
    01:00 UTC; the first window ends at 00:50 GMT and is 50 minutes long."""
    report = report_for(date(2026, 3, 29))
    assert [(w.start, w.end) for w in report.windows] == [
        (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 0, 50, tzinfo=UTC)),
        (datetime(2026, 3, 29, 1, 10, tzinfo=UTC), datetime(2026, 3, 29, 23, 0, tzinfo=UTC)),
    ]


def test_the_autumn_change_day_has_a_longer_first_window() -> None:
    """On 25 October 2026 01:00-01:59 happens twice, so 00:00 BST to 01:50 GMT is 2h50m."""
    report = report_for(date(2026, 10, 25))
    assert spans(report) == [("00:00", "01:50"), ("02:10", "24:00")]
    assert report.windows[0].length == timedelta(hours=2, minutes=50)
    assert report.critical_runs[0].at == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_a_critical_interval_entry_is_placed_on_its_anchor() -> None:
    report = report_for(date(2026, 6, 17), critical=[*CRITICAL, "reconcile-ledger"])
    assert spans(report) == [
        ("00:00", "00:50"),
        ("01:10", "01:50"),
        ("02:10", "06:50"),
        ("07:10", "12:50"),
        ("13:10", "17:20"),
        ("17:40", "18:50"),
        ("19:10", "24:00"),
    ]


def test_interval_entries_without_anchors_are_reported_not_dropped() -> None:
    report = report_for(date(2026, 6, 17), anchors={})
    assert [item.entry for item in report.phase_unknown] == [
        "heartbeat",
        "queue-depth",
        "cache-stats",
        "token-refresh",
        "reconcile-ledger",
    ]
    assert report.to_dict()["phase_unknown"] == [item.entry for item in report.phase_unknown]
    assert report.windows[0].noncritical_runs == 968 - 358


def test_a_critical_interval_entry_without_anchor_is_refused() -> None:
    with pytest.raises(PhaseUnknown) as caught:
        report_for(date(2026, 6, 17), critical=["reconcile-ledger"], anchors={})
    assert str(caught.value).startswith(
        "critical entry 'reconcile-ledger': interval schedule (every 6:00:00) has no anchor: its "
        "phase is unknown until the lease store has a claimed slot for the entry"
    )


def test_the_preflight_questions() -> None:
    """What `handover --to` asks: the next critical run, and the quiet window we are in."""
    now = datetime(2026, 6, 17, 15, 0, tzinfo=UTC)  # 16:00 BST
    run = next_critical_run(SCHEDULE, CRITICAL, now, tz=LONDON, anchors=ANCHORS)
    assert (run.entry, run.at) == ("letters-weekday", datetime(2026, 6, 17, 16, 30, tzinfo=UTC))
    window = next_quiet_window(
        SCHEDULE, CRITICAL, now, tz=LONDON, guard=GUARD, min_length=MIN_LENGTH, anchors=ANCHORS
    )
    assert (window.start, window.end) == (now, datetime(2026, 6, 17, 16, 20, tzinfo=UTC))
    inside = next_quiet_window(
        SCHEDULE,
        CRITICAL,
        datetime(2026, 6, 17, 16, 25, tzinfo=UTC),
        tz=LONDON,
        guard=GUARD,
        min_length=MIN_LENGTH,
        anchors=ANCHORS,
    )
    assert inside.start == datetime(2026, 6, 17, 16, 40, tzinfo=UTC)


class Lunar(BaseSchedule):
    """A custom schedule type with its own is_due: nobody can name its runs in advance."""

    def is_due(self, last_run_at):
        return False, 3600.0

    def __repr__(self) -> str:
        return "<lunar>"


def test_a_solar_entry_is_placed_and_a_custom_one_named_as_unsupported_and_refused() -> None:
    sunset = solar("sunset", 51.5, -0.1, app=app)
    schedule = {
        **SCHEDULE,
        "lights-off": {"task": "lights", "schedule": sunset},
        "tides": {"task": "tides", "schedule": Lunar()},
    }
    report = quiet_windows(
        schedule,
        [*CRITICAL, "lights-off"],
        local(date(2026, 6, 17), 0),
        local(date(2026, 6, 18), 0),
        tz=LONDON,
        guard=GUARD,
        min_length=MIN_LENGTH,
        anchors=ANCHORS,
    )
    sunset_runs = [run.at for run in report.critical_runs if run.entry == "lights-off"]
    assert sunset_runs == [datetime(2026, 6, 17, 20, 20, 11, tzinfo=UTC)]  # 21:20:11 BST
    assert [item.entry for item in report.unsupported] == ["tides"]
    assert report.to_dict()["unsupported"] == ["tides"]
    assert (
        "Not counted, unsupported schedule: tides: Lunar schedule <lunar> is not a schedule type"
        in render_table(report, phase_unknown_reason="-")
    )
    with pytest.raises(UnsupportedSchedule, match=r"^critical entry 'tides': Lunar schedule"):
        next_critical_run(schedule, ["tid*"], datetime(2026, 6, 17, tzinfo=UTC), tz=LONDON)
