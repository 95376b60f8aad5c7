"""A Celery app for fault tests: three one-second entries that differ only in what a run in
doubt may become. ``guarded`` runs a task based on the worker-side guard (a second delivery of a
slot is dropped), ``repeat-safe`` is named in ``beat_lock_repeat_safe``, ``at-most-once`` (the
unguarded one) is neither. The worker appends each run it executes to ``TEST_RECORD_PATH``
(after the guard)."""

from __future__ import annotations

import os
from datetime import timedelta

from celery import Celery, Task

from beat_handover.handover.testing.received_runs import append_record
from beat_handover.scheduler.guard import OncePerSlotTask

GUARDED, REPEAT_SAFE, UNGUARDED = "guarded", "repeat-safe", "at-most-once"
ENTRIES = (GUARDED, REPEAT_SAFE, UNGUARDED)

app = Celery("fault_test", broker=os.environ.get("TEST_BROKER_URL", "memory://"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # A broker that refuses: fail the publish within a second, as the in-doubt path expects.
    broker_connection_max_retries=1,
    task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
    beat_schedule={
        UNGUARDED: {"task": "tests.faults.app.plain", "schedule": timedelta(seconds=1)},
        GUARDED: {"task": "tests.faults.app.guarded", "schedule": timedelta(seconds=1)},
        REPEAT_SAFE: {"task": "tests.faults.app.plain", "schedule": timedelta(seconds=1)},
    },
    beat_lock_repeat_safe=[REPEAT_SAFE],
)


def _append(task: Task) -> None:
    append_record(os.environ["TEST_RECORD_PATH"], task.name, task.request.id, task.request.headers)


@app.task(bind=True)
def plain(self: Task) -> None:
    _append(self)


@app.task(bind=True, base=OncePerSlotTask)
def guarded(self: Task) -> None:
    _append(self)
