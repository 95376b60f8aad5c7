"""The daylight saving rules of DESIGN.md on both Europe/London change days of 2026, against
hand-computed expectations, and what plain croniter and Celery's own crontab do instead.

29 March 2026: at 01:00 GMT (01:00 UTC) clocks go to 02:00 BST; local 01:00-01:59 never happens.
25 October 2026: at 02:00 BST (01:00 UTC) clocks go back to 01:00 GMT; local 01:00-01:59 happens
twice, first at 00:00-00:59 UTC (BST), then at 01:00-01:59 UTC (GMT).

What the other two do, observed by running them below (croniter 7, Celery 5.7):

* plain croniter, iterating from an aware Europe/London time, gets the spring gap right (01:30
  fires at 02:00 BST) and the wildcard counts right (23 and 25), but fires a fixed-time 01:30
  TWICE on the autumn day (00:30 and 01:30 UTC): it breaks "a fixed-time run whose local time
  occurs twice fires once, at the first occurrence".
* Celery's crontab, driven the way beat drives it (is_due after every run), fires the autumn
  01:30 once, but breaks "a wildcard-hour run fires at every real instant whose local time
  matches": minute=0 fires 24 times on the autumn day, skipping the second 01:00 (01:00 UTC).
  It also fires the spring 01:30 at 02:30 BST (01:30 UTC), half an hour after the first instant
  after the gap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from celery import Celery
from celery.schedules import crontab
from croniter import croniter

from beat_handover.scheduler.firetimes import fire_times, next_fire_time

LONDON = ZoneInfo("Europe/London")
SPRING = date(2026, 3, 29)
AUTUMN = date(2026, 10, 25)


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def local_day(day: date) -> tuple[datetime, datetime]:
    """The real instants of local `day` as a half-open (start, end] pair for fire_times, with
    local midnight included."""
    start = datetime(day.year, day.month, day.day, tzinfo=LONDON)
    after = day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=LONDON)
    return start - timedelta(microseconds=1), end - timedelta(microseconds=1)


def runs_on(entry: crontab, day: date) -> list[datetime]:
    start, end = local_day(day)
    return fire_times(entry, start, end, tz=LONDON)


# -- spring forward, 29 March 2026 ----------------------------------------------------------------


def test_spring_fixed_time_in_the_gap_fires_once_at_the_first_instant_after_it() -> None:
    assert runs_on(crontab(minute=30, hour=1), SPRING) == [utc(SPRING, 1)]  # 02:00 BST


def test_spring_two_fixed_times_landing_on_one_instant_fire_once() -> None:
    """01:00 (in the gap) moves to 02:00 BST, which is also the entry's 02:00 run."""
    assert runs_on(crontab(minute=0, hour="1,2"), SPRING) == [utc(SPRING, 1)]
    assert runs_on(crontab(minute="*", hour=1), SPRING) == [utc(SPRING, 1)]


def test_spring_wildcard_hour_fires_23_times_and_never_in_the_gap() -> None:
    runs = runs_on(crontab(minute=0), SPRING)
    assert runs == [utc(SPRING, hour) for hour in range(23)]  # 00:00 GMT, then 02:00-23:00 BST
    assert len(runs_on(crontab(minute=30), SPRING)) == 23


def test_spring_times_outside_the_gap_keep_their_local_time() -> None:
    assert runs_on(crontab(minute=59, hour=0), SPRING) == [utc(SPRING, 0, 59)]  # 00:59 GMT
    assert runs_on(crontab(minute=0, hour=2), SPRING) == [utc(SPRING, 1)]  # 02:00 BST
    assert runs_on(crontab(minute=30, hour=2), SPRING) == [utc(SPRING, 1, 30)]  # 02:30 BST


# -- fall back, 25 October 2026 -------------------------------------------------------------------


def test_autumn_fixed_time_in_the_fold_fires_once_at_the_first_occurrence() -> None:
    assert runs_on(crontab(minute=30, hour=1), AUTUMN) == [utc(AUTUMN, 0, 30)]  # 01:30 BST


def test_autumn_fixed_hour_fires_through_the_first_pass_of_the_hour_only() -> None:
    runs = runs_on(crontab(minute="*", hour=1), AUTUMN)
    assert runs == [utc(AUTUMN, 0, minute) for minute in range(60)]


def test_autumn_wildcard_hour_fires_25_times_including_both_passes() -> None:
    runs = runs_on(crontab(minute=0), AUTUMN)
    assert runs == [utc(AUTUMN, 0) - timedelta(hours=1)] + [utc(AUTUMN, h) for h in range(24)]
    assert utc(AUTUMN, 0, 30) in runs_on(crontab(minute=30), AUTUMN)
    assert utc(AUTUMN, 1, 30) in runs_on(crontab(minute=30), AUTUMN)


def test_next_fire_time_follows_the_same_rules() -> None:
    fixed = crontab(minute=30, hour=1)
    assert next_fire_time(fixed, utc(SPRING, 0), tz=LONDON) == utc(SPRING, 1)
    assert next_fire_time(fixed, utc(AUTUMN, 0), tz=LONDON) == utc(AUTUMN, 0, 30)
    assert next_fire_time(fixed, utc(AUTUMN, 0, 30), tz=LONDON) == utc(AUTUMN + timedelta(1), 1, 30)
    assert next_fire_time(crontab(minute=0), utc(AUTUMN, 0), tz=LONDON) == utc(AUTUMN, 1)


def test_a_zone_with_a_half_hour_change_moves_gap_runs_to_the_gap_end() -> None:
    """Lord Howe Island moves 30 minutes, at 02:00 local (+10:30) on 4 October 2026 (15:30 UTC the
    day before): 02:15 does not exist and fires at 02:30 (+11:00)."""
    zone = ZoneInfo("Australia/Lord_Howe")
    day = datetime(2026, 10, 4, tzinfo=zone)
    runs = fire_times(
        crontab(minute=15, hour=2), day - timedelta(hours=1), day + timedelta(1), tz=zone
    )
    assert runs == [datetime(2026, 10, 3, 15, 30, tzinfo=UTC)]
    assert runs[0].astimezone(zone).strftime("%H:%M %z") == "02:30 +1100"


# -- what the others do ---------------------------------------------------------------------------


def croniter_runs(expression: str, day: date) -> list[datetime]:
    """Plain croniter iterating from an aware Europe/London time, as its docs suggest."""
    start, end = local_day(day)
    cron = croniter(expression, start.astimezone(LONDON), ret_type=datetime, day_or=False)
    runs = []
    while (at := cron.get_next().astimezone(UTC)) <= end:
        runs.append(at)
    return runs


def celery_beat_runs(entry_minute: object, entry_hour: object, day: date) -> list[datetime]:
    """Celery's crontab driven like beat: check is_due every minute, record a run when due."""
    app = Celery("dst-probe", set_as_current=False)
    app.conf.timezone = "Europe/London"
    now = [utc(day, 0) - timedelta(hours=3)]
    entry = crontab(minute=entry_minute, hour=entry_hour, nowfun=lambda: now[0], app=app)
    start, end = local_day(day)
    last_run = now[0]
    runs = []
    while now[0] < end:
        now[0] += timedelta(minutes=1)
        if entry.is_due(last_run).is_due:
            last_run = now[0]
            if start < now[0] <= end:
                runs.append(now[0])
    return runs


def test_plain_croniter_breaks_the_fixed_time_fold_rule() -> None:
    assert croniter_runs("30 1 * * *", AUTUMN) == [utc(AUTUMN, 0, 30), utc(AUTUMN, 1, 30)]
    assert runs_on(crontab(minute=30, hour=1), AUTUMN) == [utc(AUTUMN, 0, 30)]
    # ...while it agrees with the rules on the spring gap and on wildcard hours:
    assert croniter_runs("30 1 * * *", SPRING) == [utc(SPRING, 1)]
    assert len(croniter_runs("0 * * * *", SPRING)) == 23
    assert len(croniter_runs("0 * * * *", AUTUMN)) == 25


def test_celery_crontab_breaks_the_wildcard_fold_rule_and_runs_late_after_the_gap() -> None:
    hourly = celery_beat_runs(0, "*", AUTUMN)
    assert len(hourly) == 24
    assert utc(AUTUMN, 1) not in hourly  # the second 01:00 (GMT) never fires
    assert len(runs_on(crontab(minute=0), AUTUMN)) == 25
    assert celery_beat_runs(30, 1, SPRING) == [utc(SPRING, 1, 30)]  # 02:30 BST, not 02:00
    # ...while it agrees with the rules on the fixed-time fold and the spring wildcard count:
    assert celery_beat_runs(30, 1, AUTUMN) == [utc(AUTUMN, 0, 30)]
    assert len(celery_beat_runs(0, "*", SPRING)) == 23
