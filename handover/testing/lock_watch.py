"""Watching a lock from outside while its participants run, as the demo, the process tests and
the benchmarks do: the lease as stored, which environment leads, how many beats of an
environment are alive.

The moto server applies a DynamoDB ``UpdateItem`` field by field, so a read racing the write
that creates or changes an item can see it half made (``CorruptRecord``). DynamoDB itself never
shows that. Only these watching helpers take it as "not yet, ask again"; the lease, the scheduler
and the ``handover`` command treat a corrupt record as the error it is.
"""

from __future__ import annotations

from beat_handover.beat_lock.errors import CorruptRecord
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore


def lease_seen(store: LeaseStore, name: str) -> LeaseRecord | None:
    """The lease record of lock ``name``; None if there is none yet or it was read half made."""
    try:
        return store.read(name)
    except CorruptRecord:
        return None


def leading_environment(store: LeaseStore, name: str) -> str | None:
    """The environment whose participant holds the lease and has renewed it in its tenure (it
    is running, not only acquired), else None."""
    record = lease_seen(store, name)
    if record is None or record.holder is None or record.renewals < 1:
        return None
    return record.holder.environment


def live_participants(store: LeaseStore, name: str, environment: str) -> int:
    """How many participants of ``environment`` have an unexpired heartbeat (0 if the read
    raced a write)."""
    try:
        participants = store.participants(name)
    except CorruptRecord:
        return 0
    return sum(p.identity.environment == environment for p in participants)
