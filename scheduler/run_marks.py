"""Marks of runs already executed, for the worker-side guard: one set-if-absent item per run.

They live in the lease store the lock URL names, beside the lease, and expire by themselves:
DynamoDB item ``pk=run#LOCK``, ``sk=ENTRY#SLOT`` with TTL attribute ``expires_at``; Redis key
``beat_lock:{LOCK}:run:ENTRY#SLOT`` with an expiry. Requests go through the lease store
(``LeaseStore.mark_run``), so timeouts and error mapping are the lease's.
"""

from __future__ import annotations

from datetime import datetime

from beat_handover.beat_lock.location import LockLocation
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.scheduler.headers import format_slot


class RunMarks:
    """Remembers which (entry, slot) runs of one lock have started executing."""

    def __init__(
        self, location: LockLocation, name: str, ttl_seconds: float, timings: LeaseTimings
    ) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.store = open_store(location, timings)

    def mark(self, entry: str, slot: datetime) -> bool:
        """Record that this run starts now; False if it was recorded before. Raises
        StoreUnavailable (the caller must not run it unmarked) or StoreMissing."""
        return self.store.mark_run(
            self.name, f"{entry}#{format_slot(slot)}", ttl_seconds=self.ttl_seconds
        )

    def close(self) -> None:
        self.store.close()
