"""What a recording worker received: one JSON line per run, with the headers the leased scheduler
puts on it, and the questions asked of such a record (was any slot received twice? which slots
of a regular series are missing?). The demo's worker and the tests' worker write it the same way.

A line: ``{"task", "id", "entry", "slot", "environment", "token", "received_at"}`` (``entry``,
``slot``, ``environment`` and ``token`` are null for a message without the headers). Each line is
one ``write`` on a file opened for appending, so lines of one solo worker never interleave.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from beat_handover.scheduler import headers


@dataclass(frozen=True)
class Record:
    """One run the worker received."""

    task: str
    id: str
    entry: str | None
    slot: datetime | None
    environment: str | None
    token: int | None
    received_at: float  # epoch seconds, the worker's clock


def append_record(
    path: str | Path, task: str, task_id: str, message_headers: dict[str, Any] | None
) -> None:
    """Append the run ``task_id`` of ``task``, with the scheduler's headers, to ``path``."""
    found = message_headers or {}
    line = {
        "task": task,
        "id": task_id,
        "entry": found.get(headers.ENTRY),
        "slot": found.get(headers.SLOT),
        "environment": found.get(headers.ENVIRONMENT),
        "token": found.get(headers.TOKEN),
        "received_at": time.time(),
    }
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")


def read_records(path: Path) -> list[Record]:
    """Every complete line of the record, in the order received."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line.endswith("}"):
            continue  # a line still being written
        data: dict[str, Any] = json.loads(line)
        slot = datetime.fromisoformat(data["slot"]) if data.get("slot") else None
        records.append(
            Record(
                task=data["task"],
                id=data["id"],
                entry=data.get("entry"),
                slot=slot,
                environment=data.get("environment"),
                token=data.get("token"),
                received_at=data["received_at"],
            )
        )
    return records


def doubled_slots(records: Iterable[Record]) -> list[tuple[str, str, int]]:
    """``(entry, slot as ISO text, times received)`` of every slot received more than once."""
    counts = Counter((r.entry, r.slot) for r in records if r.entry is not None)
    return sorted((entry, slot.isoformat(), n) for (entry, slot), n in counts.items() if n > 1)


def slots_by_entry(records: Iterable[Record]) -> dict[str, list[datetime]]:
    """The distinct slots received of each entry, ascending."""
    slots: dict[str, set[datetime]] = {}
    for record in records:
        if record.entry is not None:
            slots.setdefault(record.entry, set()).add(record.slot)
    return {entry: sorted(found) for entry, found in slots.items()}


@dataclass(frozen=True)
class SenderRun:
    """Consecutive slots of one entry, in slot order, sent by one environment under one token."""

    environment: str | None
    token: int | None
    first: datetime
    last: datetime
    slots: int

    def __str__(self) -> str:
        return (
            f"{self.environment} (token {self.token}) {self.slots} slots "
            f"{self.first:%H:%M:%S}-{self.last:%H:%M:%S} UTC"
        )


def sender_runs(records: Iterable[Record], entry: str) -> list[SenderRun]:
    """Who sent ``entry``'s slots, as runs of one sender and token in slot order: a clean
    handover shows one run per tenure, an overlap shows the senders interleaved."""
    runs: list[SenderRun] = []
    for record in sorted((r for r in records if r.entry == entry), key=lambda r: r.slot):
        previous = runs[-1] if runs else None
        if previous and (previous.environment, previous.token) == (
            record.environment,
            record.token,
        ):
            runs[-1] = SenderRun(
                previous.environment,
                previous.token,
                previous.first,
                record.slot,
                previous.slots + 1,
            )
        else:
            runs.append(SenderRun(record.environment, record.token, record.slot, record.slot, 1))
    return runs


def interval_slots(first: datetime, step: timedelta, last: datetime) -> list[datetime]:
    """``first + k * step`` for k >= 0 up to ``last`` inclusive."""
    slots = []
    slot = first
    while slot <= last:
        slots.append(slot)
        slot += step
    return slots


def missing_and_extra(
    received: Iterable[datetime], expected: Iterable[datetime]
) -> tuple[list[str], list[str]]:
    """Expected slots not received, and received slots not expected (as ISO strings)."""
    got, want = set(received), set(expected)
    return (
        [s.isoformat() for s in sorted(want - got)],
        [s.isoformat() for s in sorted(got - want)],
    )


def utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
