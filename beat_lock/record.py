"""What the store holds, as plain frozen values: the lease record, slot claims, members, audit."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beat_handover.beat_lock.identity import Identity


@dataclass(frozen=True)
class EntryClaim:
    """The last claimed slot of one schedule entry, as its claim item holds it."""

    entry: str
    slot: datetime  # the run's scheduled fire time, timezone-aware UTC
    runs: int  # how many slots of this entry have ever been claimed
    token: int  # fencing token of the claim
    environment: str  # environment of the claimer
    claim_id: str  # random id of the claim request, to recognise our own retried write
    epoch: int = 0  # the claim's number within its tenure (see Acked)
    acked: Acked | None = None  # the claimant tenure's acknowledgement when it claimed

    def acked_by(self, acked: Acked | None) -> bool:
        """Whether ``acked`` covers this claim: its publish is known (published, or recorded as
        in doubt by the tenure that claimed it)."""
        return acked is not None and (self.token, self.epoch) <= (acked.token, acked.epoch)


@dataclass(frozen=True, order=True)
class Acked:
    """How far the claims of a lock are acknowledged: every claim of an older tenure than
    ``token``, and every claim of tenure ``token`` numbered up to ``epoch`` (its claims are
    numbered 1, 2, ... in the order asked), was published or recorded as a :class:`Doubt`.
    Each claim and each renewal carries its tenure's acknowledgement in the same write, and a
    tenure that ends writes its last one, so a publish costs no write of its own."""

    token: int
    epoch: int


@dataclass(frozen=True)
class Doubt:
    """A slot claimed whose publish is not known: kept in the store, listed by ``handover
    status``, until an operator acknowledges it (``handover ack-in-doubt``)."""

    entry: str
    slot: datetime
    token: int  # the tenure that claimed it
    environment: str  # of that tenure
    reason: str  # why its publish is not known
    noticed_at: datetime  # when it was recorded (wall clock of the recorder, for people)
    noticed_by: str  # the instance that recorded it


@dataclass(frozen=True)
class LeaseRecord:
    """The lease item. It is never deleted and has no TTL, so ``token`` never goes back.

    ``version`` changes on every acquire, renew, release and pin: a standby that sees it
    unchanged for a full lease duration on its own monotonic clock may take over. Fences, claims
    and handover announcements leave it alone: they say nothing about whether the holder is
    alive. The claims are not on this record: each entry's claim is an item of its own (see
    :mod:`beat_handover.beat_lock.keys`), so the record stays the same size however long the
    schedule.
    ``handover_to`` announces that a handover is about to pin the lease to that environment, so
    its standbys read the lease more often until the pin (which clears it). The wall-clock
    fields are written for people to read; no decision compares them across hosts.
    """

    name: str
    token: int
    version: str
    holder: Identity | None
    pin: str | None
    renewed_at: datetime | None = None
    tenure_started_at: datetime | None = None
    tenure_ended_at: datetime | None = None
    renewals: int = 0  # successful renewals in the current tenure (0 right after acquire)
    handover_to: str | None = None
    handover_announced_at: datetime | None = None
    acked: Acked | None = None  # how far the claims' publishes are acknowledged

    @property
    def held(self) -> bool:
        return self.holder is not None


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"  # publish the run
    ALREADY_CLAIMED = "already-claimed"  # someone sent this slot (or a later one): skip it
    LEASE_LOST = "lease-lost"  # the token is no longer the lease's: stop acting


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    entry: str
    slot: datetime
    last: EntryClaim | None  # the entry's claim as stored after the attempt, if known
    reason: str = ""

    @property
    def claimed(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED


@dataclass(frozen=True)
class Participant:
    """A heartbeat: one beat process (leader or standby) announcing that it is alive."""

    identity: Identity
    role: str  # "leader" or "standby"
    seen_at: datetime  # wall clock of the participant's last heartbeat
    expires_at: datetime
    sequence: int  # increases on every heartbeat of this instance
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def clock_skew_seconds(self) -> float | None:
        """Its wall clock minus the store's when it last wrote its heartbeat (None: not
        measured yet, or a beat from before the measurement)."""
        value = self.detail.get("clock_skew_seconds")
        return float(value) if isinstance(value, int | float) else None

    @property
    def clock_skewed(self) -> bool:
        """Its wall clock is beyond its beat_lock_max_clock_skew_seconds: it neither leads
        nor claims."""
        return self.detail.get("clock_skewed") is True


@dataclass(frozen=True)
class AuditEvent:
    """One line of the lock's history: a handover, a pin, a rollback, a release."""

    at: datetime
    kind: str
    actor: str  # who ran it (user name)
    host: str
    result: str
    detail: Mapping[str, Any] = field(default_factory=dict)
