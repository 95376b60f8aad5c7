"""Open the store a lock URL names. Backends are imported lazily: a DynamoDB user needs no
redis client configured, and the other way round."""

from __future__ import annotations

from beat_handover.beat_lock.location import LockLocation
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.timings import LeaseTimings


def open_store(location: LockLocation, timings: LeaseTimings | None = None) -> LeaseStore:
    """A store for ``location``; request timeouts are sized from ``timings`` (default timings)."""
    timings = timings or LeaseTimings()
    if location.backend == "dynamodb":
        from beat_handover.beat_lock.dynamodb import DynamoDBStore

        return DynamoDBStore(location, timings)
    from beat_handover.beat_lock.redis_store import RedisStore

    return RedisStore(location, timings)
