"""Fire times equal a brute-force, minute-by-minute evaluation of the crontab fields on ordinary
days (no offset change near the period), in UTC and in Europe/London, and next_fire_time agrees
with fire_times everywhere, change days included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from beat_handover.scheduler.firetimes import fire_times, next_fire_time

LONDON = ZoneInfo("Europe/London")
ZONES = st.sampled_from([UTC, LONDON])
ONE_MINUTE = timedelta(minutes=1)


def brute_force(entry: crontab, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """Every whole minute t with start < t <= end whose local time matches every field (Celery:
    day of month AND day of week)."""
    at = start.astimezone(UTC).replace(second=0, microsecond=0) + ONE_MINUTE
    found = []
    while at <= end:
        local = at.astimezone(tz)
        if (
            local.minute in entry.minute
            and local.hour in entry.hour
            and local.day in entry.day_of_month
            and local.month in entry.month_of_year
            and local.isoweekday() % 7 in entry.day_of_week
        ):
            found.append(at)
        at += ONE_MINUTE
    return found


def field(values: range, around: int | None = None) -> st.SearchStrategy[set[int]]:
    """A non-empty subset of `values`, often a full one, often holding `around`."""
    subsets = st.sets(st.sampled_from(list(values)), min_size=1, max_size=len(values))
    choices = [st.just(set(values)), subsets]
    if around is not None:
        choices.append(subsets.map(lambda chosen: chosen | {around}))
    return st.one_of(choices)


@st.composite
def crontab_and_period(draw: st.DrawFn) -> tuple[crontab, datetime, datetime, tzinfo]:
    tz = draw(ZONES)
    day = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    start = datetime(day.year, day.month, day.day, tzinfo=tz) + draw(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=23, minutes=59, seconds=59))
    )
    end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
    entry = crontab(
        minute=draw(field(range(60), start.minute)),
        hour=draw(field(range(24), start.hour)),
        day_of_week=draw(field(range(7), day.isoweekday() % 7)),
        day_of_month=draw(field(range(1, 32), day.day)),
        month_of_year=draw(field(range(1, 13), day.month)),
    )
    return entry, start, end, tz


def offset_changes_near(start: datetime, end: datetime, tz: tzinfo) -> bool:
    """Does the offset change within a day of the period? (Europe/London changes twice a year,
    months apart, so equal offsets at both ends mean no change in between.)"""
    return (start - timedelta(days=1)).astimezone(tz).utcoffset() != (
        end + timedelta(days=1)
    ).astimezone(tz).utcoffset()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(crontab_and_period())
def test_fire_times_equal_brute_force_on_ordinary_days(case) -> None:
    entry, start, end, tz = case
    assume(not offset_changes_near(start, end, tz))
    assert fire_times(entry, start, end, tz=tz) == brute_force(entry, start, end, tz)


@settings(max_examples=80, deadline=None)
@given(crontab_and_period())
def test_next_fire_time_is_the_first_fire_time_even_on_change_days(case) -> None:
    entry, after, _, tz = case
    found = next_fire_time(entry, after, tz=tz)
    assert found > after
    assert found.tzinfo is UTC
    assert fire_times(entry, after, found, tz=tz) == [found]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)]),
    st.sets(st.sampled_from(range(60)), min_size=1, max_size=6),
)
def test_wildcard_hour_fires_at_every_real_instant_with_a_matching_local_time(day, minutes) -> None:
    """On change days too, a wildcard-hour entry is exactly the brute-force answer: the rule for
    wildcard hours is "every real instant whose local time matches"."""
    start = datetime(day.year, day.month, day.day, tzinfo=LONDON) - timedelta(hours=3)
    end = start + timedelta(hours=30)
    entry = crontab(minute=minutes)
    assert fire_times(entry, start, end, tz=LONDON) == brute_force(entry, start, end, LONDON)


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """Celery's semantics (croniter day_or=False): Friday the 13th, not every Friday and 13th."""
    runs = fire_times(
        crontab(minute=0, hour=9, day_of_month=13, day_of_week="fri"),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        tz=UTC,
    )
    fridays_13th = [date(2026, 2, 13), date(2026, 3, 13), date(2026, 11, 13)]
    assert [run.date() for run in runs] == fridays_13th


def test_rare_days_are_found_far_ahead() -> None:
    """29 February on a Monday: croniter finds it 18 years on."""
    entry = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week="mon")
    assert next_fire_time(entry, datetime(2026, 1, 1, tzinfo=UTC), tz=LONDON) == datetime(
        2044, 2, 29, tzinfo=UTC
    )


def test_period_is_half_open() -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    hourly = crontab(minute=0)
    assert fire_times(hourly, at, at + timedelta(hours=1), tz=UTC) == [at + timedelta(hours=1)]
    assert fire_times(hourly, at - timedelta(seconds=1), at, tz=UTC) == [at]
    assert fire_times(hourly, at, at, tz=UTC) == []
