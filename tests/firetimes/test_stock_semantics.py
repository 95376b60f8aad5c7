"""Every schedule type Celery and django-celery-beat ship, named by the leased scheduler's fire-time
function, against stock beat driven over the same days (``tests.firetimes.stock_beat``): two
windows, each holding a daylight saving change in Europe/London.

Stock beat sends a few milliseconds after a fire time, so its send times are compared cut to the
whole second (solar: within a second, see ``beat_handover.scheduler.stepped``). Where Celery's
crontab breaks DESIGN.md's daylight saving rules (docs/design.md), the leased scheduler follows
DESIGN.md and the test names the exact runs that differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab, schedule, solar
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.tzcrontab import TzAwareCrontab

from beat_handover.scheduler.firetimes import fire_times
from tests.firetimes.stock_beat import stock_fire_times

LONDON = ZoneInfo("Europe/London")
SPRING = (datetime(2026, 3, 27, 23, 30, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC))
AUTUMN = (datetime(2026, 10, 23, 23, 30, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC))
ANCHOR_OFFSET = timedelta(seconds=13)  # the last run, just before the window (none overdue)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def app() -> Celery:
    app = Celery("stock-semantics", set_as_current=False)
    app.conf.update(timezone="Europe/London", enable_utc=True, result_expires=None)
    return app


def compare(app: Celery, make: object, window: tuple[datetime, datetime]):
    """(ours, stock's cut to whole seconds) for a schedule built by `make(app)`."""
    start, end = window
    last = start - ANCHOR_OFFSET
    ours = fire_times(make(app), start, end, tz=app.timezone, anchor=last)
    stock = stock_fire_times(app, make(app), start, end, last_run_at=last)
    return ours, [at.replace(microsecond=0) for at in stock if at <= end]


SAME_EVERY_DAY = {
    "interval 45 minutes": lambda app: schedule(timedelta(minutes=45), app=app),
    "interval 90 seconds as a number": lambda app: schedule(90, app=app),
    "relative hourly": lambda app: schedule(timedelta(hours=1), relative=True, app=app),
    "relative 15 minutes": lambda app: schedule(timedelta(minutes=15), relative=True, app=app),
    "relative daily": lambda app: schedule(timedelta(days=1), relative=True, app=app),
    "crontab 09:00 weekdays": lambda app: crontab(minute=0, hour=9, day_of_week="1-5", app=app),
    "crontab 01:30 on the autumn day": lambda app: crontab(minute=30, hour=1, app=app),
    "TzAwareCrontab 08:00 New York": lambda app: TzAwareCrontab(
        minute=0, hour=8, tz=ZoneInfo("America/New_York"), app=app
    ),
}


# The spring gap of the 01:30 crontab is a documented difference, tested below.
CASES = [
    pytest.param(kind, window, id=f"{kind}-{name}")
    for kind in sorted(SAME_EVERY_DAY)
    for name, window in (("spring", SPRING), ("autumn", AUTUMN))
    if (kind, name) != ("crontab 01:30 on the autumn day", "spring")
]


@pytest.mark.parametrize(("kind", "window"), CASES)
def test_the_same_fire_times_as_stock_beat(app: Celery, kind: str, window) -> None:
    ours, stock = compare(app, SAME_EVERY_DAY[kind], window)
    assert ours, kind
    assert ours == stock


def test_solar_events_within_a_second_of_stock_beat(app: Celery) -> None:
    for window in (SPRING, AUTUMN):
        ours, stock = compare(app, lambda app: solar("sunrise", 51.5, -0.12, app=app), window)
        assert len(ours) == len(stock) == 3
        assert all(abs(a - b) < timedelta(seconds=1) for a, b in zip(ours, stock, strict=True))
        assert all(at.microsecond == 0 for at in ours)


def test_clocked_fires_once_at_its_time(app: Celery) -> None:
    at = utc(2026, 3, 29, 1, 30)  # in the spring gap's hour: a clocked time is an instant
    ours, stock = compare(app, lambda app: clocked(at, app=app), SPRING)
    assert ours == stock == [at]


def test_wildcard_hours_on_the_autumn_day_follow_design_not_celery(app: Celery) -> None:
    """Celery's crontab skips the second 01:15 (GMT); DESIGN.md fires every real instant whose
    local time matches, so the leased scheduler sends one run more."""
    ours, stock = compare(app, lambda app: crontab(minute=15, app=app), AUTUMN)
    assert sorted(set(ours) - set(stock)) == [utc(2026, 10, 25, 1, 15)]
    assert set(stock) <= set(ours)


def test_a_fixed_time_in_the_spring_gap_follows_design_not_celery(app: Celery) -> None:
    """01:30 does not exist on 29 March: DESIGN.md fires at the first instant after the gap
    (02:00 BST), Celery's crontab at 02:30 BST. Also for a TzAwareCrontab in an app kept in UTC."""
    ours, stock = compare(app, lambda app: crontab(minute=30, hour=1, app=app), SPRING)
    assert sorted(set(ours) ^ set(stock)) == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)]
    assert utc(2026, 3, 29, 1, 0) in ours
    app.conf.timezone = "UTC"
    ours, stock = compare(
        app, lambda app: TzAwareCrontab(minute=30, hour=1, tz=LONDON, app=app), SPRING
    )
    assert sorted(set(ours) ^ set(stock)) == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)]
