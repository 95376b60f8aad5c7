"""The worker-side guard on a real worker: a run delivered twice executes once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from celery import Celery

from beat_handover.scheduler.headers import run_headers
from tests.harness import Processes, read_records, wait_for

pytestmark = [pytest.mark.integration]

GUARDED = "tests.scheduler.app.guarded_record"
UNGUARDED = "tests.scheduler.app.record"


def test_a_run_delivered_twice_executes_once(processes: Processes, broker_url: str):
    worker = processes.worker()
    slot = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    first = run_headers("letters", slot, token=3, environment="paas")
    second = run_headers("letters", slot.replace(hour=2), token=3, environment="paas")
    sender = Celery(broker=broker_url)
    for name, headers in [
        (GUARDED, first),
        (GUARDED, first),
        (GUARDED, second),
        (GUARDED, None),
        (UNGUARDED, first),
        (UNGUARDED, first),
    ]:
        sender.send_task(name, headers=headers)
    sender.close()

    wait_for(lambda: len(read_records(processes.record_path)) >= 5, 60, "five runs", worker)
    wait_for(
        lambda: worker.logged("already executed: skipping this delivery"),
        10,
        "the guard to skip the second delivery",
        worker,
    )
    runs = Counter((r.task, r.slot) for r in read_records(processes.record_path))
    assert runs == {
        (GUARDED, slot): 1,
        (GUARDED, slot.replace(hour=2)): 1,
        (GUARDED, None): 1,
        (UNGUARDED, slot): 2,  # without the guard both deliveries run
    }
