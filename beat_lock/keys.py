"""Where each stored item of a lock lives, defined once: the backends and the IAM policies that
``handover init`` prints both read these names.

DynamoDB, one table keyed ``pk`` (partition) + ``sk`` (sort), lock NAME:

    pk              sk              item                                           expires
    lease#NAME      lease           the lease record                               never
    claim#NAME      ENTRY           one schedule entry's last claim and its fence  never
    member#NAME     INSTANCE        a participant's heartbeat                      after a lease
    audit#NAME      TIME#HEX        an audit event (handover, pin, fallback)       ~400 days
    run#NAME        ENTRY#SLOT      a run marked by the worker-side guard          guard TTL
    doubt#NAME      ENTRY#MILLIS    a slot in doubt, until an operator clears it   never

Redis, lock NAME (the braces are a cluster hash tag: every key of one lock is in one slot, so one
Lua script may touch several of them):

    beat_lock:{NAME}:lease            hash: the lease record
    beat_lock:{NAME}:claims           hash: entry -> its last claim (JSON)
    beat_lock:{NAME}:members          hash: instance id -> heartbeat (JSON)
    beat_lock:{NAME}:members:expiry   sorted set: instance id scored by expiry (server time)
    beat_lock:{NAME}:audit            list: audit events (JSON), newest first, trimmed
    beat_lock:{NAME}:run:ENTRY#SLOT   string with an expiry: a run marked by the guard
    beat_lock:{NAME}:doubts           hash: ENTRY#MILLIS -> a slot in doubt (JSON)
"""

from __future__ import annotations

LEASE = "lease#"
CLAIM = "claim#"
MEMBER = "member#"
AUDIT = "audit#"
RUN = "run#"
DOUBT = "doubt#"
LEASE_SORT_KEY = "lease"


def partition(prefix: str, name: str) -> str:
    """The DynamoDB partition key of lock ``name``'s items of one kind (``prefix``)."""
    return f"{prefix}{name}"


def redis_key(name: str, *parts: str) -> str:
    """``beat_lock:{NAME}:PART:...``, a Redis key of lock ``name``."""
    return ":".join(("beat_lock", f"{{{name}}}", *parts))
