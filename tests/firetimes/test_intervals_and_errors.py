"""Interval entries are placed on their anchor; what cannot be placed says so, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import BaseSchedule, crontab, schedule
from hypothesis import given, settings
from hypothesis import strategies as st

from beat_handover.beat_lock.errors import BeatLockError, ConfigError
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.firetimes import fire_times, next_fire_time

LONDON = ZoneInfo("Europe/London")
ANCHOR = datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC)


def test_interval_runs_are_anchor_plus_whole_periods_both_ways() -> None:
    hour = timedelta(hours=1)
    runs = fire_times(timedelta(minutes=20), ANCHOR - hour, ANCHOR + hour, tz=LONDON, anchor=ANCHOR)
    assert runs == [ANCHOR + k * timedelta(minutes=20) for k in range(-2, 4)]
    assert all(run.tzinfo is UTC for run in runs)


def test_interval_ignores_daylight_saving() -> None:
    """Elapsed time, not wall time: every 30 minutes through the spring gap is still 30 minutes."""
    runs = fire_times(
        schedule(run_every=1800), ANCHOR, ANCHOR + timedelta(hours=2), tz=LONDON, anchor=ANCHOR
    )
    assert [b - a for a, b in pairwise(runs)] == [timedelta(minutes=30)] * 3


@settings(max_examples=60, deadline=None)
@given(
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=2)),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=30)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_interval_fire_times_are_exactly_the_multiples_in_the_period(
    every: timedelta, anchor: datetime, offset: timedelta, length: timedelta
) -> None:
    start = anchor + offset
    end = start + length
    runs = fire_times(every, start, end, tz=UTC, anchor=anchor)
    assert all(start < run <= end and (run - anchor) % every == timedelta(0) for run in runs)
    assert runs == sorted(runs)
    first = next_fire_time(every, start, tz=UTC, anchor=anchor)
    assert first - every <= start < first
    assert runs[:1] == ([first] if first <= end else [])
    assert len(runs) in (length // every, length // every + 1)


def test_interval_without_anchor_says_the_phase_is_unknown() -> None:
    with pytest.raises(PhaseUnknown) as caught:
        fire_times(timedelta(minutes=5), ANCHOR, ANCHOR + timedelta(hours=1), tz=UTC)
    assert str(caught.value) == (
        "interval schedule (every 0:05:00) has no anchor: its phase is unknown until the "
        "lease store has a claimed slot for the entry (after beat has sent it once through the "
        "leased scheduler)"
    )
    assert isinstance(caught.value, BeatLockError)
    with pytest.raises(PhaseUnknown):
        next_fire_time(schedule(run_every=60), ANCHOR, tz=UTC)


def test_unknown_schedule_types_are_not_supported() -> None:
    class Custom(BaseSchedule):
        def __repr__(self) -> str:
            return "<custom>"

    with pytest.raises(UnsupportedSchedule) as caught:
        next_fire_time(Custom(), ANCHOR, tz=UTC)
    assert str(caught.value) == (
        "Custom schedule <custom> is not a schedule type whose fire times can be named in "
        "advance (crontab, celery.schedules.schedule, solar, django-celery-beat's clocked); use "
        "one of those, or give the class a next_fire_time(after) method (docs/schedules.md)"
    )


def test_bad_arguments_are_config_errors_with_the_value_seen() -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(
        ConfigError,
        match=r"start must be a timezone-aware datetime .* got "
        r"datetime.datetime\(2026, 1, 1, 0, 0\)",
    ):
        fire_times(crontab(), naive, ANCHOR, tz=UTC)
    with pytest.raises(ConfigError, match=r"tz must be a tzinfo .* got 'Europe/London'"):
        fire_times(crontab(), ANCHOR, ANCHOR, tz="Europe/London")
    with pytest.raises(ConfigError, match=r"interval schedule of 0:00:00 never advances"):
        fire_times(0, ANCHOR, ANCHOR, tz=UTC, anchor=ANCHOR)
    with pytest.raises(ConfigError, match=r"anchor must be a timezone-aware datetime"):
        fire_times(60, ANCHOR, ANCHOR, tz=UTC, anchor=naive)


def test_an_interval_too_fine_for_the_period_is_refused_not_listed() -> None:
    with pytest.raises(
        UnsupportedSchedule,
        match=r"fires 86400000 times between .* more than the "
        r"5000000 runs",
    ):
        fire_times(
            timedelta(milliseconds=1), ANCHOR, ANCHOR + timedelta(days=1), tz=UTC, anchor=ANCHOR
        )


def test_local_times_are_instants_not_wall_clocks() -> None:
    """Python subtracts two datetimes that share a tzinfo by wall clock; the 23-hour spring day
    must still hold 23 hourly runs when anchor and period are all given in Europe/London."""
    midnight = datetime(2026, 3, 29, tzinfo=LONDON)
    next_midnight = datetime(2026, 3, 30, tzinfo=LONDON)
    runs = fire_times(timedelta(hours=1), midnight, next_midnight, tz=LONDON, anchor=midnight)
    assert len(runs) == 23
    assert next_fire_time(
        timedelta(hours=1), next_midnight - timedelta(hours=1), tz=LONDON, anchor=midnight
    ) == datetime(2026, 3, 29, 23, 0, tzinfo=UTC)


def test_a_custom_schedule_with_next_fire_time_is_stepped_by_it() -> None:
    """The documented way to dispatch a schedule of one's own (docs/schedules.md)."""

    class EveryOtherMinute(schedule):
        def is_due(self, last_run_at):
            return super().is_due(last_run_at)

        def next_fire_time(self, after: datetime) -> datetime | None:
            at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
            return at if at.minute % 2 == 0 else at + timedelta(minutes=1)

    runs = fire_times(EveryOtherMinute(60), ANCHOR, ANCHOR + timedelta(minutes=7), tz=UTC)
    assert [run.minute for run in runs] == [0, 2, 4, 6]
    assert next_fire_time(EveryOtherMinute(60), ANCHOR, tz=UTC) == runs[0]
