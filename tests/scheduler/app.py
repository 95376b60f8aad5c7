"""A tiny Celery app for process-level tests of the leased scheduler.

Its broker is ``TEST_BROKER_URL`` (a test redis-server). Beat sends one-second interval entries
under the three catch-up policies and an every-minute crontab entry; the worker appends each
received run, with its headers, as a JSON line to ``TEST_RECORD_PATH`` (one ``write`` per line
on a file opened for appending, so lines from one solo worker never interleave).
"""

from __future__ import annotations

import os
from datetime import timedelta

from celery import Celery, Task
from celery.schedules import crontab

from beat_handover.handover.testing.received_runs import append_record
from beat_handover.scheduler.guard import OncePerSlotTask

app = Celery("leased_beat_test", broker=os.environ.get("TEST_BROKER_URL", "memory://"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ.get("TEST_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    beat_schedule={
        "every-second": {"task": "tests.scheduler.app.record", "schedule": timedelta(seconds=1)},
        "every-second-all": {"task": "tests.scheduler.app.record", "schedule": 1.0},
        "every-second-critical": {
            "task": "tests.scheduler.app.record",
            "schedule": timedelta(seconds=1),
        },
        "every-minute": {"task": "tests.scheduler.app.record", "schedule": crontab(minute="*")},
    },
    beat_lock_catch_up={"every-second-all": "all"},
    beat_lock_critical=["every-second-critical"],
)


def _append(task: Task) -> None:
    append_record(os.environ["TEST_RECORD_PATH"], task.name, task.request.id, task.request.headers)


@app.task(bind=True)
def record(self: Task) -> None:
    """Record this run and its headers."""
    _append(self)


@app.task(bind=True, base=OncePerSlotTask)
def guarded_record(self: Task) -> None:
    """Record this run; the guard skips a second delivery of the same slot before we get here."""
    _append(self)
