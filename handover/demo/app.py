"""The Celery app of ``make demo`` (``python -m beat_handover.handover.demo`` starts its beats
and its worker).

Everything it writes lives in the directory named by ``BEAT_HANDOVER_DEMO_DIR``: the broker is
kombu's ``filesystem://`` transport (one file per message, no server to install; with the atomic
writes of :mod:`beat_handover.handover.demo.file_broker`) and the worker appends every run it
receives, with the scheduler's headers, to ``received.jsonl`` in the format of
:mod:`beat_handover.handover.testing.received_runs`. The lease store comes from ``BEAT_LOCK_URL``,
as in any app that uses the leased scheduler.

The schedule, in Europe/London time: three fast interval entries, an every-minute crontab and a
critical daily ``letters`` run at ``BEAT_HANDOVER_DEMO_LETTERS`` (HH:MM, 17:30 unless the demo
says otherwise), far enough away that the handover's guard lets it through.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from celery import Celery, Task
from celery.schedules import crontab

from beat_handover.handover.demo.stage import (
    DIRECTORY_VARIABLE,
    LETTERS_VARIABLE,
    RECORD_FILE,
    TIMEZONE,
)
from beat_handover.handover.testing.received_runs import append_record

FAST_ENTRIES = {"heartbeat": 1, "sync-inbox": 2, "refresh-cache": 5}  # name: seconds


def _directory() -> Path:
    value = os.environ.get(DIRECTORY_VARIABLE)
    if not value or not Path(value).is_dir():
        # ImportError, because that is what `celery -A` and `handover -A` report in one line.
        raise ImportError(
            "beat_handover.handover.demo.app is the app of the demo and needs "
            f"{DIRECTORY_VARIABLE} set to an "
            f"existing directory, got {value!r}; run it through `make demo` "
            "(python -m beat_handover.handover.demo)"
        )
    return Path(value)


def _letters_at() -> tuple[int, int]:
    value = os.environ.get(LETTERS_VARIABLE, "17:30")
    hour, _, minute = value.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ImportError(f"{LETTERS_VARIABLE} must be a time HH:MM such as 17:30, got {value!r}")
    return int(hour), int(minute)


DIRECTORY = _directory()
BROKER_DIRECTORY = DIRECTORY / "broker"
for folder in ("messages", "processed", "control"):
    (BROKER_DIRECTORY / folder).mkdir(parents=True, exist_ok=True)
LETTERS_HOUR, LETTERS_MINUTE = _letters_at()
TASK = "beat_handover.handover.demo.app.record"

app = Celery("beat_handover_demo", broker="filesystem://")
app.conf.update(
    broker_transport="beat_handover.handover.demo.file_broker:Transport",
    broker_transport_options={
        # One folder both ways: beat writes a message file there and the worker takes it.
        "data_folder_in": str(BROKER_DIRECTORY / "messages"),
        "data_folder_out": str(BROKER_DIRECTORY / "messages"),
        "store_processed": True,  # else kombu moves consumed messages through the system /tmp
        "processed_folder": str(BROKER_DIRECTORY / "processed"),
        "control_folder": str(BROKER_DIRECTORY / "control"),
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    worker_enable_remote_control=False,
    timezone=TIMEZONE,
    beat_schedule={
        **{
            name: {"task": TASK, "schedule": timedelta(seconds=seconds)}
            for name, seconds in FAST_ENTRIES.items()
        },
        "report-minute": {"task": TASK, "schedule": crontab(minute="*")},
        "letters": {"task": TASK, "schedule": crontab(hour=LETTERS_HOUR, minute=LETTERS_MINUTE)},
    },
    beat_lock_critical=["letters"],
    # Every missed heartbeat is sent late rather than skipped, so the record shows each slot.
    beat_lock_catch_up={"heartbeat": "all"},
)


@app.task(bind=True)
def record(self: Task) -> None:
    """Record this run and the headers it carries (entry, slot, environment, token)."""
    append_record(DIRECTORY / RECORD_FILE, self.name, self.request.id, self.request.headers)
