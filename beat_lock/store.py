"""The interface every lease backend implements, with the exact conditions each write enforces.

A backend only stores and compares; the timing rules (who may take over when, when a holder
stops trusting its lease) live once, in :mod:`beat_handover.beat_lock.lease`, for every backend.

Every conditional write is atomic in the store (one DynamoDB ``UpdateItem`` on one item, or one
Redis Lua script); nothing needs transactions, so every implementation of DynamoDB serves. Writes
return ``False`` (or a ClaimResult that says why) when their condition does not hold, and raise
:class:`~beat_handover.beat_lock.errors.StoreUnavailable` when the store could not be asked in
time. A write that raised may still have happened: callers that care read the record back and
compare ``version`` (or a claim's ``claim_id``) with the value they tried to write.

Fenced claims. Each schedule entry's last claim is an item of its own, so a renewal, a poll and
a claim each touch one small item whatever the schedule's size. A leader fences before it
claims: at the start of its tenure every entry it will claim and every entry that has a claim
item, later any entry new to its schedule. From then on the store refuses a claim of an older
tenure on any entry, and the fence reports each entry's last claim, which is where the new
leader resumes. DynamoDB cannot check the lease record in the same write as a claim item, so
there each claim item carries a fence (the token of the newest tenure that fenced it) and a claim
is conditional on it; the fence itself ends with a write conditional on the lease, so an entry
fenced by a tenure that had already lost the lease is never claimed. Redis checks the lease
record in the claim's own script, so there a claim is refused as soon as the token changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.location import LockLocation
from beat_handover.beat_lock.record import (
    Acked,
    AuditEvent,
    ClaimResult,
    Doubt,
    EntryClaim,
    LeaseRecord,
    Participant,
)
from beat_handover.beat_lock.store_clock import StoreClock


class LeaseStore(ABC):
    """One lock store (a DynamoDB table or a Redis database) holding any number of named locks."""

    location: LockLocation

    @abstractmethod
    def store_clock(self) -> StoreClock:
        """The store's clock as this process last read it, on the answers of its own requests
        (no request of its own): this host's skew and the store's time now."""

    @abstractmethod
    def read(self, name: str, *, consistent: bool = True) -> LeaseRecord | None:
        """The lease record, or None if the lock was never acquired. ``consistent=False`` lets
        DynamoDB answer from a replica that may lag (half the price); only a standby's poll
        asks for that, because every decision it takes on the answer is a conditional write."""

    @abstractmethod
    def acquire(
        self,
        name: str,
        identity: Identity,
        *,
        expected_version: str | None,
        new_version: str,
        take_pin: bool = False,
    ) -> int | None:
        """Become holder, with token + 1, if the pin allows ``identity.environment`` and either
        the record does not exist, has no holder, or (takeover) still has ``expected_version``.
        With ``take_pin`` (a fallback from a pinned environment that stopped renewing), the only
        condition is ``expected_version``, and the pin moves to ``identity.environment`` in the
        same write. Returns the new fencing token, or None if the condition did not hold."""

    @abstractmethod
    def renew(
        self,
        name: str,
        identity: Identity,
        token: int,
        *,
        new_version: str,
        acked: Acked | None = None,
    ) -> bool:
        """Keep the lease: only if ``identity`` holds it with ``token`` and the pin allows it.
        With ``acked``, write it to the record in the same write (the holder's acknowledgement
        of its published claims: it costs no request of its own)."""

    @abstractmethod
    def acknowledge(self, name: str, acked: Acked) -> bool:
        """Raise the record's acknowledgement to ``acked`` if that is later than the one it holds
        (never lower it); a former holder's last word on its claims, so it is not conditional
        on holding the lease, and it touches nothing a lease decision reads. False if the
        record holds a later one (or does not exist)."""

    @abstractmethod
    def record_doubt(self, name: str, doubt: Doubt) -> bool:
        """Keep ``doubt`` until an operator clears it; False if that slot was recorded already
        (the first record is kept)."""

    @abstractmethod
    def doubts(self, name: str) -> list[Doubt]:
        """The slots in doubt, by entry and slot (strongly consistent)."""

    @abstractmethod
    def clear_doubt(self, name: str, entry: str, slot: datetime) -> bool:
        """Forget one slot in doubt (an operator checked it); False if it was not recorded."""

    @abstractmethod
    def release(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        """Give the lease up (no holder; token kept) if ``identity`` holds it with ``token``."""

    @abstractmethod
    def fence(
        self,
        name: str,
        entries: Collection[str],
        *,
        identity: Identity,
        token: int,
        everything: bool,
    ) -> dict[str, EntryClaim] | None:
        """Make tenure ``token`` the only one whose claims of ``entries`` (with ``everything``:
        and of every entry that has a claim item) the store accepts, and return the last claim
        of each of them (entries never claimed are absent). Converts a lock still in the legacy
        layout (:mod:`beat_handover.beat_lock.legacy`). Returns None, fencing nothing more, if
        ``identity`` does not hold the lease with ``token`` (and the pin's allowance) at the
        end: a fence of a tenure that had lost the lease by then admits no claim. May write
        O(entries) items; a leader pays it once per tenure."""

    @abstractmethod
    def claim(
        self,
        name: str,
        entry: str,
        slot: datetime,
        *,
        identity: Identity,
        token: int,
        claim_id: str,
        epoch: int = 0,
        acked: Acked | None = None,
    ) -> ClaimResult:
        """Claim one scheduled run, atomically, on the entry's claim item only: only if
        tenure ``token`` may claim the entry (DynamoDB: it fenced the entry and no later tenure
        has; Redis: ``identity`` holds the lease with ``token``, the pin allows it and the lock
        has been fenced in this layout) and ``slot`` is later than the entry's last claimed
        slot. Records slot, runs + 1, token, environment, ``claim_id``, ``epoch`` (the claim's
        number in its tenure) and, if given, ``acked`` (the tenure's acknowledgement, see
        :class:`~beat_handover.beat_lock.record.Acked`) for the entry."""

    @abstractmethod
    def read_claim(self, name: str, entry: str) -> EntryClaim | None:
        """The last claim of ``entry`` as its claim item holds it (strongly consistent), or
        None if it has none. Legacy fields are not read: a tenure that claimed has fenced, and
        fencing converts them."""

    @abstractmethod
    def last_claims(self, name: str) -> dict[str, EntryClaim]:
        """Every entry's last claim (strongly consistent), legacy fields merged; for operators'
        commands (status, quiet windows, preflight): O(entries) reads, no write."""

    @abstractmethod
    def pin(
        self,
        name: str,
        environment: str | None,
        *,
        expected_token: int | None,
        new_version: str,
        end_tenure: bool,
    ) -> LeaseRecord | None:
        """Set the pin (None = any environment), only if the token is still ``expected_token``
        (None: no condition). With ``end_tenure`` and a holder outside ``environment``, clear
        the holder and increase the token in the same write. Clears any announced handover.
        Creates the record if missing. Returns the record as written, or None if the token
        condition failed."""

    @abstractmethod
    def announce(
        self, name: str, environment: str | None, *, expected_token: int | None
    ) -> LeaseRecord | None:
        """Announce a handover to ``environment`` (``handover_to``, and this host's time), or
        with None withdraw any announcement, only if the record exists and its token is still
        ``expected_token`` (None: no token condition). Leaves token, holder, pin and version
        alone, so it can neither help nor hinder a takeover. Writing it twice is harmless.
        Returns the record as written, or None if the condition failed."""

    @abstractmethod
    def heartbeat(
        self,
        name: str,
        identity: Identity,
        *,
        role: str,
        ttl_seconds: float,
        sequence: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Announce that ``identity`` is alive, as leader or standby, for ``ttl_seconds``."""

    @abstractmethod
    def leave(self, name: str, identity: Identity) -> None:
        """Remove ``identity``'s heartbeat (clean shutdown)."""

    @abstractmethod
    def participants(self, name: str) -> list[Participant]:
        """Heartbeats that have not expired, oldest instance first."""

    @abstractmethod
    def record_event(self, name: str, event: AuditEvent) -> None:
        """Append to the lock's audit log (kept, with a long TTL where the store has one)."""

    @abstractmethod
    def events(self, name: str, limit: int = 50) -> list[AuditEvent]:
        """The newest ``limit`` audit events, newest first."""

    @abstractmethod
    def mark_run(self, name: str, run: str, *, ttl_seconds: float) -> bool:
        """Set-if-absent a mark for ``run`` (an entry and slot) of lock ``name`` that expires
        after ``ttl_seconds``; False if it was marked before. For the worker-side guard."""

    @abstractmethod
    def lock_names(self) -> list[str]:
        """The names of every lock with a lease record in this store, sorted; for operators
        (``handover status`` names them when asked about a lock never acquired). Reads the
        whole table or key space: never on a beat's path."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable or StoreMissing unless the store answers and the table exists."""

    def close(self) -> None:  # noqa: B027 - backends without connections need not override
        """Release connections."""
