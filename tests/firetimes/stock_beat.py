"""Stock ``celery.beat`` as the judge of fire times: the real ``Scheduler.tick`` loop, with a fake
clock that advances by what each tick asks beat to sleep (as ``beat.Service.start`` does), and an
``apply_entry`` that records the clock instead of publishing. Nothing of Celery's is replaced but
the clock and the publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.beat import ScheduleEntry, Scheduler

# Beat's loop goes round again at once (or after a sleep shorter than a datetime can add);
# time still passes.
TICK_COST = timedelta(milliseconds=1)


class _RecordingScheduler(Scheduler):
    def __init__(self, app: Celery, clock: list[datetime]) -> None:
        self.clock = clock
        self.sent: list[datetime] = []
        super().__init__(app, lazy=True)
        self.__dict__["producer"] = None  # apply_entry below never publishes

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        self.sent.append(self.clock[0])


def stock_fire_times(
    app: Celery, schedule: Any, start: datetime, end: datetime, *, last_run_at: datetime
) -> list[datetime]:
    """When stock beat sends an entry with `schedule` between `start` and `end` (aware), the
    entry having last run at `last_run_at`; each send time as the fake clock read it (UTC)."""
    clock = [start.astimezone(UTC)]

    def now() -> datetime:
        return clock[0].astimezone(app.timezone)

    app.now = now
    zone = getattr(schedule, "tz", None)
    schedule.nowfun = (lambda: clock[0].astimezone(zone)) if zone is not None else now
    scheduler = _RecordingScheduler(app, clock)
    # In the app's zone, as beat's own clock (app.now) gives it: relative intervals round there.
    local_last_run = last_run_at.astimezone(app.timezone)
    entry = ScheduleEntry(
        name="entry", task="t", schedule=schedule, last_run_at=local_last_run, app=app
    )
    entry.schedule.nowfun = schedule.nowfun
    scheduler.schedule["entry"] = entry
    while clock[0] <= end:
        delay = scheduler.tick()
        clock[0] += max(timedelta(seconds=delay or 0), TICK_COST)
    return scheduler.sent
