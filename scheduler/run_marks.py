"""Marks of runs already executed, for the worker-side guard: one set-if-absent item per run.

They live in the lease store the lock URL names, beside the lease, and expire by themselves:
DynamoDB item ``pk=run#LOCK``, ``sk=ENTRY#SLOT`` with TTL attribute ``expires_at``; Redis key
``beat_lock:{LOCK}:run:ENTRY#SLOT`` with an expiry. Requests go through the lease store's own
client, so timeouts and the mapping of client errors onto StoreUnavailable/StoreMissing are the
lease's.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

from beat_lock.location import LockLocation
from beat_lock.store import LeaseStore
from beat_lock.stores import open_store
from beat_lock.timings import LeaseTimings
from scheduler.headers import format_slot


class RunMarks:
    """Remembers which (entry, slot) runs of one lock have started executing."""

    def __init__(self, location: LockLocation, name: str, ttl_seconds: float,
                 timings: LeaseTimings) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.store = open_store(location, timings)

    def mark(self, entry: str, slot: datetime) -> bool:
        """Record that this run starts now; False if it was recorded before. Raises
        StoreUnavailable (the caller must not run it unmarked) or StoreMissing."""
        run = f"{entry}#{format_slot(slot)}"
        if self.store.location.backend == "dynamodb":
            return self._mark_dynamodb(self.store, run)
        return self._mark_redis(self.store, run)

    def _mark_dynamodb(self, store: LeaseStore, run: str) -> bool:
        from beat_lock.dynamodb import _Rejected

        expires_at = math.ceil(time.time() + self.ttl_seconds)
        try:
            store._call(
                "put_item", expect=("ConditionalCheckFailedException",),
                TableName=store.table,
                Item={"pk": {"S": f"run#{self.name}"}, "sk": {"S": run},
                      "expires_at": {"N": str(expires_at)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _Rejected:
            return False
        return True

    def _mark_redis(self, store: LeaseStore, run: str) -> bool:
        with store._mapped(self.name):
            return bool(store._client.set(
                f"beat_lock:{{{self.name}}}:run:{run}", b"1", nx=True,
                ex=math.ceil(self.ttl_seconds),
            ))

    def close(self) -> None:
        self.store.close()
