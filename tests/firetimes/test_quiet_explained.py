"""Quiet windows that explain themselves: the runs inside each window per entry, which critical
entries leave no window at all, and the report's rule read at one instant (the preflight's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery.schedules import crontab

from beat_handover.handover.quiet_table import render_table
from beat_handover.scheduler.quiet import CriticalRun, Crowding, quiet_at, quiet_windows

START = datetime(2026, 6, 17, tzinfo=UTC)
GUARD = timedelta(minutes=10)


def report(schedules, critical, *, hours=24, min_length=timedelta(minutes=15)):
    return quiet_windows(
        schedules,
        critical,
        START,
        START + timedelta(hours=hours),
        tz=UTC,
        guard=GUARD,
        min_length=min_length,
    )


def test_each_window_counts_its_runs_per_entry_busiest_first():
    result = report(
        {
            "nightly": crontab(minute=0, hour=3),
            "every-minute": crontab(),
            "hourly": crontab(minute=30),
        },
        ["nightly"],
    )

    first, second = result.windows
    assert first.runs_by_entry == (("every-minute", 171), ("hourly", 3))
    assert first.noncritical_runs == 174
    assert second.runs_by_entry == (("every-minute", 1251), ("hourly", 21))
    assert result.to_dict()["windows"][0]["runs_by_entry"] == {"every-minute": 171, "hourly": 3}


def test_an_entry_that_alone_leaves_no_window_is_named_with_its_spacing():
    result = report({"letters": crontab(minute="*/15"), "nightly": crontab(0, 3)}, ["*"])

    assert result.windows == ()
    assert result.crowded_by == (Crowding("letters", 97, timedelta(minutes=15)),)
    reason = (
        "letters runs at most 15m apart, and a window of 15m needs 35m between two critical "
        "runs (the 10m guard on both sides)"
    )
    assert result.no_window_reason() == reason
    assert result.to_dict()["no_window_because"] == reason
    table = render_table(result, phase_unknown_reason="")
    assert "  No quiet window of at least 15m in this period:\n    letters runs at most" in table


def test_entries_that_leave_no_window_only_together_are_named_together():
    result = report({"a": crontab(minute=0), "b": crontab(minute=30)}, ["a", "b"])

    assert result.windows == ()
    assert result.crowded_by == ()
    assert result.no_window_reason() == (
        "a, b together leave no gap long enough: a window of 15m needs 35m between two "
        "critical runs (the 10m guard on both sides)"
    )


def test_now_is_quiet_only_when_a_window_starts_now_whichever_side_the_run_is():
    schedules = {"letters": crontab(minute=0)}
    one_minute = timedelta(minutes=1)

    def at(now):
        return quiet_at(schedules, ["letters"], now, tz=UTC, guard=GUARD, min_length=one_minute)

    after = at(START + timedelta(minutes=2))
    assert not after.quiet
    assert after.blocking == (CriticalRun("letters", START),)
    assert after.window.start == START + GUARD

    assert at(START + GUARD).quiet
    assert at(START + timedelta(minutes=49)).quiet
    before = at(START + timedelta(minutes=49, seconds=1))  # a 1m handover would end inside
    assert not before.quiet
    assert before.blocking == (CriticalRun("letters", START + timedelta(hours=1)),)
    assert not before.crowded
