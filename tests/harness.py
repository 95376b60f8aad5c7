"""Real ``celery beat`` and ``celery worker`` processes for tests, and checks on what was received.

Start processes through a :class:`Processes` used as a context manager in a fixture, so every
process is killed at teardown whatever the test did (paused ones are resumed first)::

    @pytest.fixture
    def processes(tmp_path):
        with Processes(tmp_path, "tests.scheduler.app", {"TEST_BROKER_URL": broker}) as procs:
            yield procs

    def test_something(processes):
        worker = processes.worker()
        paas = processes.beat("paas", BEAT_LOCK_URL=url, BEAT_LOCK_NAME=name)
        wait_for(lambda: paas.logged("dispatching"), 30, "paas to lead", paas, worker)
        received = read_records(processes.record_path)
        each_slot_once(received)

Processes run from the repository root (so ``-A tests.scheduler.app`` imports), with the test
process's environment (the moto server's AWS_* variables included) plus what the test adds, and
write their output to a log file under the test's tmp_path. The process plumbing and the record
format live in the package (``beat_handover.handover.testing.processes``,
``beat_handover.handover.testing.received_runs``), shared with the demo; the test app's worker
appends one JSON line per received run to ``record_path``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beat_handover.handover.testing import processes
from beat_handover.handover.testing.processes import Proc, wait_for
from beat_handover.handover.testing.received_runs import (
    Record,
    doubled_slots,
    interval_slots,
    missing_and_extra,
    read_records,
    slots_by_entry,
    utc,
)

__all__ = [
    "ROOT",
    "Proc",
    "Processes",
    "Record",
    "each_slot_once",
    "interval_slots",
    "minute_slots",
    "missing_and_extra",
    "read_records",
    "settled",
    "utc",
    "wait_for",
]

ROOT = Path(__file__).resolve().parents[1]


class Processes(processes.Processes):
    """The subprocesses of one test, run from the repository root; the test app's worker
    records what it receives in ``record_path``."""

    def __init__(self, tmp_path: Path, app: str, env: Mapping[str, str]) -> None:
        super().__init__(
            tmp_path,
            app,
            {**env, "TEST_RECORD_PATH": str(tmp_path / "records.jsonl")},
            cwd=ROOT,
        )

    @property
    def record_path(self) -> Path:
        return Path(self.env["TEST_RECORD_PATH"])


def each_slot_once(records: Iterable[Record]) -> dict[str, list[datetime]]:
    """The received slots of each entry, ascending; AssertionError if any slot came twice."""
    records = list(records)
    doubled = doubled_slots(records)
    assert not doubled, f"slots received more than once (entry, slot, times): {doubled}"
    return slots_by_entry(records)


def minute_slots(after: datetime, until: datetime) -> list[datetime]:
    """Whole UTC minutes in (after, until]: the fire times of ``crontab(minute="*")``."""
    slot = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return interval_slots(slot, timedelta(minutes=1), until)


def settled(processes: Processes, *beats: Proc, quiet_seconds: float = 1.0) -> list[Record]:
    """Stop the beats (SIGTERM), then the records once the worker has taken everything: no new
    record for ``quiet_seconds``."""
    for beat in beats:
        beat.send(15)
    for beat in beats:
        beat.wait_exit(30)
    seen = -1
    while True:
        records = read_records(processes.record_path)
        if len(records) == seen:
            return records
        seen = len(records)
        time.sleep(quiet_seconds)
