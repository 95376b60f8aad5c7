"""The scheduler's test app with a handover-sized schedule: a one-second entry whose every slot
the worker records, and one critical entry (yearly, New Year 03:00 UTC) that no test run comes
near, so preflight's guard passes unless a test names another critical entry."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from tests.scheduler.app import app

__all__ = ["app"]

app.conf.update(
    beat_schedule={
        "every-second": {"task": "tests.scheduler.app.record", "schedule": timedelta(seconds=1)},
        "letters": {
            "task": "tests.scheduler.app.record",
            "schedule": crontab(minute=0, hour=3, day_of_month=1, month_of_year=1),
        },
    },
    beat_lock_critical=["letters"],
    beat_lock_catch_up={},
)
