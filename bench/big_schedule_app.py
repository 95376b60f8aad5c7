"""The app of ``bench/bench_big_schedule.py``: ``BENCH_ENTRIES`` every-minute crontab entries, as
a schedule read from a database (django-celery-beat, per-tenant entries) can have. Its broker is
``BENCH_BROKER_URL``; no worker runs, so every published run stays in the queue to be counted."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

app = Celery("big_schedule", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    beat_schedule={
        f"app.tasks.scheduled_entry_{i:05d}": {
            "task": "app.tasks.scheduled",
            "schedule": crontab(minute="*"),
        }
        for i in range(int(os.environ["BENCH_ENTRIES"]))
    },
)
