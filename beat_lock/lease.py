"""The lease state machine, the same for every backend: acquire, renew, take over, claim, release.

A participant is a standby or the leader. A standby reads the lease every ``poll_seconds``: it
acquires a lease nobody holds (if the pin allows its environment), and takes over one whose
record version it has seen unchanged for a full ``lease_seconds`` on its own monotonic clock.
A lease pinned to another environment is left alone while that environment keeps it alive; seen
unchanged for ``fallback_seconds``, it is taken and the pin moved (an audited fallback). When the
record announces a handover to the standby's environment (``handover_to``), it reads every
``ANNOUNCED_POLL_SECONDS`` instead, so it acquires within moments of the pin that follows; for
at most ``lease_seconds`` after first seeing the announcement, so one left behind by an
interrupted handover cannot make it hammer the store. The announcement never changes the record
version, so it neither hastens nor delays a takeover or a fallback. The leader renews every
``renew_seconds`` (the first time right after acquiring) and trusts its lease for
``safe_seconds`` from the moment it sent its last successful renewal. Every change of holder
increases the fencing token; every run goes out only through a fenced ``claim``.

Guaranteed: only the store's conditional writes decide; a holder that paused, or lost the store,
stops trusting its lease (``valid()``) before a standby may take over, as long as the two
monotonic clocks run at rates within ``(lease - safe) / lease`` of each other; and even when that
fails a stale holder's claims are refused by the store once the new holder has fenced, which it
does (``fence``) before it claims anything. Not guaranteed: that a run is sent at all when the
store is unreachable for longer than ``safe_seconds`` (the leader stops acting).

A standby's poll is an eventually consistent read (half the price on DynamoDB), except while a
handover to its environment is announced. A stale answer cannot weaken anything: every step taken
on a poll (acquire, take over, fall back, resume) is a write conditional on what was read, so a
stale read makes it fail, never succeed wrongly; and a read never returns a version before it
was written, so a version is first seen no earlier than the renewal that wrote it and the
takeover timing above holds. A stale answer can only delay: a free lease, an announcement or a
pin is seen up to the replica's lag later (AWS: usually under a second). While an announced
handover is under way the reads are strongly consistent, so the pin is seen at once.

Wall clocks. Expiry never compares them, but fire times are wall-clock by nature, so every
participant compares its wall clock with the store's on each renewal, poll and claim (the
store's clock rides on those answers: :mod:`beat_handover.beat_lock.store_clock`). Beyond
``max_clock_skew_seconds`` a standby does not acquire or take over, a leader steps down and
releases at once (a correct standby acquires the free lease within a poll), and every claim is
refused; and a claim of a slot more than ``max_clock_skew_seconds`` ahead of the store's time is
refused whatever the last reading said, so a clock stepped forward between two renewals cannot
claim (and so suppress) future runs. Each change of judgement is logged (ERROR when skewed) and
the skew is in every heartbeat.

Ambiguous writes (the answer was lost): a renewal is simply retried (it is conditional on our
token, which only we can still hold); an acquire is resolved by the next read, which shows us as
the holder; a claim is retried with the same claim id, so our own stored claim counts once.

Acknowledged publishes. A tenure numbers its claims 1, 2, ... as it asks them; a claim is
outstanding from then until its caller settles it (``settle``: published, or recorded as in
doubt). The tenure's acknowledgement (:class:`~beat_handover.beat_lock.record.Acked`) is the
highest number below every outstanding claim; every claim and every renewal carries it in the
same write, and a tenure that ends (released, refused, lapsed) writes its last one, once. So a
new leader can tell a claim of an earlier tenure whose publish is known from one in doubt, and a
publish costs no write of its own: it is acknowledged by the tenure's next claim of any entry or
its next renewal, whichever comes first. A new tenure carries no acknowledgement until its
caller says the earlier tenures' claims are resolved (``predecessors_resolved``): its
acknowledgement covers every older claim.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.errors import BeatLockError, StoreError, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import claim_result, new_version, slot_millis
from beat_handover.beat_lock.record import (
    Acked,
    AuditEvent,
    ClaimOutcome,
    ClaimResult,
    EntryClaim,
    LeaseRecord,
)
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.store_clock import ClockSkew
from beat_handover.beat_lock.timings import LeaseTimings

log = logging.getLogger(__name__)

DEFAULT_TIMINGS = LeaseTimings()
PENDING_CLAIMS_KEPT = 256  # claims whose answer was lost, remembered to retry with the same id
# A standby told that a handover to its environment is about to be pinned reads this often: the
# handover's gap (from the pin to the new holder's first renewal) is then one such interval plus
# a few requests, not up to a whole poll_seconds. About 20 reads a second, for a second or two
# per handover.
ANNOUNCED_POLL_SECONDS = 0.05


class Role(enum.Enum):
    LEADER = "leader"
    STANDBY = "standby"
    STOPPED = "stopped"


@dataclass(frozen=True)
class _Tenure:
    """What the leader knows of its own tenure; replaced whole, so readers need no lock."""

    token: int
    renewed_at: float  # our clock when the last successful renewal (or the acquire) was sent


class Lease:
    """One participant of one named lock. Call ``step()`` regularly (``LeaseKeeper`` does)."""

    def __init__(
        self,
        store: LeaseStore,
        name: str,
        identity: Identity,
        timings: LeaseTimings = DEFAULT_TIMINGS,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_start_leading: Callable[[int], None] | None = None,
        on_stop_leading: Callable[[str], None] | None = None,
        heartbeat_detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.identity = identity
        self.timings = timings
        self._clock = clock
        self._on_start_leading = on_start_leading
        self._on_stop_leading = on_stop_leading
        self._heartbeat_detail = heartbeat_detail
        self._store_clock = store.store_clock()
        self._skewed = False  # the last judgement of our wall clock, to log its changes
        self._unmeasured = False  # warned that the store's answers carry no time
        # _lock serialises the state machine (step, release, stepping down); it is never held
        # by a claim in flight or a heartbeat, so a hung renewal does not hold up a claim.
        self._lock = threading.RLock()
        self._heartbeat_lock = threading.Lock()
        self._claims_lock = threading.Lock()
        self._role = Role.STANDBY
        self._tenure: _Tenure | None = None
        self._ended: _Tenure | None = None  # the last tenure that ended, for its runs in flight
        self._seen: tuple[str, float] | None = None  # another holder's version, first seen at
        # a handover announced to our environment (its announced_at as stored), first seen at
        self._announced: tuple[datetime | None, float] | None = None
        self._standing_by_because = ""
        self._pending_claims: dict[tuple[str, int], str] = {}
        # Acknowledgements: claims asked and not settled, by (entry, slot millis) -> number;
        # the tenure they belong to; the number of its last claim; whether its acknowledgements
        # are held back (until the earlier tenures' claims are resolved); the last one written.
        self._outstanding: dict[tuple[str, int], int] = {}
        self._epoch_token: int | None = None
        self._epoch = 0
        self._acks_held = True
        self._acked: Acked | None = None
        self._lease_due = 0.0  # leader: next renewal; standby: next read of the lease
        self._heartbeat_due = 0.0
        self._sequence = 0

    @property
    def role(self) -> Role:
        return self._role

    @property
    def token(self) -> int | None:
        tenure = self._tenure
        return tenure.token if tenure is not None else None

    def _context(self) -> str:
        return (
            f"name={self.name} environment={self.identity.environment} "
            f"instance={self.identity.instance_id}"
        )

    def step(self) -> float:
        """Do what is due now and return seconds until the next step is due. Leader: renew when
        due (the first renewal right after acquiring, then every renew_seconds); standby: read the
        lease, acquire it if free and the pin allows, take over if its version stayed unchanged
        for lease_seconds on our monotonic clock; both: heartbeat every renew_seconds (ttl
        lease_seconds). StoreUnavailable is logged and absorbed (short retry); ConfigError,
        StoreMissing and CorruptRecord propagate."""
        with self._lock:
            if self._role is Role.STOPPED:
                log.info("lease rejoining as standby %s", self._context())
                self._role = Role.STANDBY
            if self._clock() >= self._lease_due:
                action = self._renew if self._role is Role.LEADER else self._poll
                self._lease_due = self._absorbing(action, self._poll_interval())
        with self._heartbeat_lock:
            if self._clock() >= self._heartbeat_due:
                self._heartbeat_due = self._absorbing(self._heartbeat, self.timings.poll_seconds)
        return max(0.0, min(self._lease_due, self._heartbeat_due) - self._clock())

    def _absorbing(self, action: Callable[[], float], poll_seconds: float) -> float:
        """Run ``action`` (which returns when it is next due); if the store did not answer,
        log it and make the action due again after ``poll_seconds`` (or renew_seconds if
        shorter)."""
        try:
            return action()
        except StoreUnavailable as exc:
            retry = min(poll_seconds, self.timings.renew_seconds)
            log.warning(
                "lease store unavailable %s role=%s action=%s retry_seconds=%s error=%s",
                self._context(),
                self._role.value,
                action.__name__.strip("_"),
                retry,
                exc,
            )
            return self._clock() + retry

    def _renew(self) -> float:
        tenure = self._tenure
        assert tenure is not None
        if self._clock() - tenure.renewed_at >= self.timings.lease_seconds:
            # A standby may have taken over by now; rejoin as one (the next read tells).
            self._step_down(f"no successful renewal for {self.timings.lease_seconds}s")
            return self._clock()
        sent_at = self._clock()
        with self._claims_lock:
            acked = self._acknowledgement(tenure.token)
        if not self.store.renew(
            self.name, self.identity, tenure.token, new_version=new_version(), acked=acked
        ):
            self._step_down(
                "renewal refused: the lease was taken over, handed over or pinned "
                "to another environment"
            )
            return self._clock()
        self._tenure = _Tenure(tenure.token, sent_at)
        if acked is not None:
            self._acked = acked
        skew = self._skew_beyond_bound()
        if skew is not None:
            self._step_down_skewed(self._tenure, f"this host's wall clock is {skew.describe()}")
            return self._clock()
        return sent_at + self.timings.renew_seconds

    def _acknowledgement(self, token: int) -> Acked | None:
        """The acknowledgement a write of tenure ``token`` carries now: the highest claim
        number below every outstanding claim (None while held back). Holds _claims_lock."""
        if self._epoch_token != token or self._acks_held:
            return None
        numbers = self._outstanding.values()
        return Acked(token, (min(numbers) - 1) if numbers else self._epoch)

    def predecessors_resolved(self) -> None:
        """The caller has resolved every claim of earlier tenures (published, resent or recorded
        as in doubt): from now on this tenure's writes carry its acknowledgement."""
        with self._claims_lock:
            self._acks_held = False

    def settle(self, entry: str, slot: datetime) -> None:
        """The claim of ``slot`` is resolved: published, or recorded as in doubt. A claim of a
        tenure that has ended meanwhile (a run in flight at a pin) is acknowledged at once, in
        a write of its own: the next leader is waiting for it."""
        with self._claims_lock:
            self._outstanding.pop((entry, slot_millis(slot)), None)
        ended = self._ended
        if self._tenure is None and ended is not None:
            self._last_word(ended.token)

    def may_publish(self, token: int) -> bool:
        """Whether a run claimed by tenure ``token`` may be published now: that tenure is ours
        and its safe time has not run out. A tenure ended by a pin or a refused renewal still
        publishes what it claimed, for the rest of its safe time (the claim was accepted, and
        a new leader waits that long for its acknowledgement); a holder that was paused or cut
        off past its safe time publishes nothing it claimed before."""
        current, ended = self._tenure, self._ended
        tenure = next((t for t in (current, ended) if t is not None and t.token == token), None)
        return self._safe_remaining(tenure) > 0.0

    @property
    def outstanding(self) -> int:
        """Claims asked and not settled (their publish is not acknowledged yet)."""
        return len(self._outstanding)

    def _last_word(self, token: int) -> None:
        """A tenure that ends writes its last acknowledgement, once; a record for the next
        leader, so a failure is logged and nothing else (the next leader then judges the
        unacknowledged claims in doubt)."""
        with self._claims_lock:
            acked = self._acknowledgement(token)
        if acked is None or acked == self._acked:
            return
        try:
            self.store.acknowledge(self.name, acked)
        except StoreError as exc:
            log.warning(
                "lease last acknowledgement not written %s token=%d epoch=%d error=%s",
                self._context(),
                token,
                acked.epoch,
                exc,
            )
            return
        self._acked = acked

    def _poll(self) -> float:
        # The next read is timed from this one's start, so a slow store does not stretch the
        # interval (and a handover's gap) past poll_seconds.
        started_at = self._clock()
        record = self.store.read(self.name, consistent=self._handover_announced())
        seen_at = self._clock()  # after the answer: the version existed by then, at the latest
        self._note_announcement(record, seen_at)
        environment = self.identity.environment
        skew = self._skew_beyond_bound()
        if skew is not None:
            # Neither acquire nor take over; a tenure of ours the record still shows (an answer
            # lost before we stepped down) is released, so a correct standby acquires it now.
            self._seen = None
            self._standing_by("clock skewed beyond max_clock_skew_seconds")
            if record is not None and record.holder == self.identity:
                self._release_quietly(record.token)
        elif record is not None and record.holder == self.identity:
            # Our acquire whose answer was lost, or our own tenure after an outage: confirm it
            # with a renewal, which succeeds only if nobody took over meanwhile.
            self._resume(record)
        elif record is not None and record.pin not in (None, environment):
            # The pin is honoured while its environment keeps the lease alive; if nobody there
            # holds and renews it for fallback_seconds, we take it and move the pin to us, so a
            # pin never leaves beat without a leader for longer than that.
            if self._seen is None or self._seen[0] != record.version:
                self._seen = (record.version, seen_at)
                self._standing_by(f"pinned to {record.pin}")
            elif seen_at - self._seen[1] >= self.timings.fallback_seconds:
                self._acquire(record.version, previous=record, take_pin=True)
        elif record is None or record.holder is None:
            self._acquire(None if record is None else record.version, previous=None)
        elif self._seen is None or self._seen[0] != record.version:
            self._seen = (record.version, seen_at)
            self._standing_by(f"held by {record.holder}")
        elif seen_at - self._seen[1] >= self.timings.lease_seconds:
            self._acquire(record.version, previous=record)
        if self._role is Role.LEADER:
            return self._clock()  # renew at once: proves the new tenure to whoever watches
        return started_at + self._poll_interval()

    def _note_announcement(self, record: LeaseRecord | None, seen_at: float) -> None:
        """Remember a handover announced to our environment, and when we first saw it (a new
        announcement, with another announced_at, starts afresh)."""
        if record is None or record.handover_to != self.identity.environment:
            self._announced = None
        elif self._announced is None or self._announced[0] != record.handover_announced_at:
            self._announced = (record.handover_announced_at, seen_at)
            log.info(
                "lease handover announced %s announced_at=%s poll_seconds=%s for_seconds=%s",
                self._context(),
                record.handover_announced_at,
                self._poll_interval(),
                self.timings.lease_seconds,
            )

    def _poll_interval(self) -> float:
        """Seconds between a standby's reads: ANNOUNCED_POLL_SECONDS for lease_seconds after it
        first saw a handover announced to its environment, else poll_seconds."""
        if self._handover_announced():
            return min(ANNOUNCED_POLL_SECONDS, self.timings.poll_seconds)
        return self.timings.poll_seconds

    def _handover_announced(self) -> bool:
        """A standby that saw a handover to its environment announced, less than lease_seconds
        ago."""
        announced = self._announced
        return (
            self._role is Role.STANDBY
            and announced is not None
            and self._clock() - announced[1] < self.timings.lease_seconds
        )

    def _standing_by(self, because: str) -> None:
        if because != self._standing_by_because:
            self._standing_by_because = because
            log.info("lease standby %s because=%r", self._context(), because)

    def _acquire(
        self,
        expected_version: str | None,
        *,
        previous: LeaseRecord | None,
        take_pin: bool = False,
    ) -> None:
        sent_at = self._clock()
        token = self.store.acquire(
            self.name,
            self.identity,
            expected_version=expected_version,
            new_version=new_version(),
            take_pin=take_pin,
        )
        if token is None:
            self._seen = None  # someone else moved first: watch the new version from scratch
            return
        if previous is None:
            how = "acquired"
        elif take_pin:
            how = (
                f"fell back from {previous.pin} (pinned there, but nobody renewed it for "
                f"{self.timings.fallback_seconds:g}s); the pin moved to "
                f"{self.identity.environment}"
            )
            self._record_fallback(previous, token)
        else:
            how = (
                f"took over from {previous.holder} (token {previous.token}, version unchanged "
                f"for {self.timings.lease_seconds}s)"
            )
        self._become_leader(_Tenure(token, sent_at), how)

    def _record_fallback(self, previous: LeaseRecord, token: int) -> None:
        """A fallback moves the pin an operator set, so it goes in the lock's history; the
        record is for people and a failed write never undoes the fallback."""
        event = AuditEvent(
            at=datetime.now(UTC),
            kind="fallback",
            actor=self.identity.instance_id,
            host=socket.gethostname(),
            result="taken",
            detail={
                "from": previous.pin,
                "to": self.identity.environment,
                "token": token,
                "unchanged_seconds": self.timings.fallback_seconds,
            },
        )
        try:
            self.store.record_event(self.name, event)
        except StoreError as exc:
            log.warning("fallback audit write failed %s error=%s", self._context(), exc)

    def _resume(self, record: LeaseRecord) -> None:
        sent_at = self._clock()
        if self.store.renew(self.name, self.identity, record.token, new_version=new_version()):
            self._become_leader(_Tenure(record.token, sent_at), "resumed our tenure")

    def _become_leader(self, tenure: _Tenure, how: str) -> None:
        with self._claims_lock:
            if self._epoch_token != tenure.token:  # a new tenure (not ours resumed)
                self._epoch_token, self._epoch, self._acks_held = tenure.token, 0, True
                self._outstanding.clear()
                self._acked = None
        self._tenure = tenure
        self._ended = None
        self._role = Role.LEADER
        self._seen = None
        self._standing_by_because = ""
        log.info("lease leading %s token=%d how=%r", self._context(), tenure.token, how)
        self._notify(self._on_start_leading, tenure.token)

    def _step_down(self, reason: str, *, role: Role = Role.STANDBY) -> None:
        tenure = self._tenure
        self._tenure = None
        self._role = role
        if tenure is None:
            return
        self._ended = tenure
        log.info(
            "lease stopped leading %s token=%d reason=%r", self._context(), tenure.token, reason
        )
        self._last_word(tenure.token)
        self._notify(self._on_stop_leading, reason)

    def _notify(self, callback: Callable[[Any], None] | None, argument: Any) -> None:
        # A failing callback must not stop the lease machinery (renewals, stepping down).
        if callback is None:
            return
        try:
            callback(argument)
        except Exception:
            log.exception("lease callback %r failed %s", callback, self._context())

    def clock_skew(self) -> ClockSkew | None:
        """This host's wall clock against the store's now, judged against
        ``max_clock_skew_seconds``; None until the store has answered once."""
        return self._store_clock.skew(self.timings.max_clock_skew_seconds)

    def _skew_beyond_bound(self) -> ClockSkew | None:
        """The skew if it is beyond the bound, else None; logs each change of judgement."""
        skew = self.clock_skew()
        if skew is None and not self._unmeasured:
            # Called after the store answered: its answers carry no time (a proxy that drops
            # the Date header?), so this host's clock goes unchecked. Said once.
            self._unmeasured = True
            log.warning(
                "lease store's answers carry no time %s: this host's wall clock cannot be "
                "compared with the store's, so a wrong clock would move fire times",
                self._context(),
            )
        skewed = skew is not None and skew.exceeded
        if skewed != self._skewed:
            self._skewed = skewed
            self._heartbeat_due = 0.0  # show the change to `handover status` at once
            if skewed:
                log.error(
                    "lease clock skewed %s skew=%s: this host neither leads nor claims until its "
                    "wall clock is corrected (check NTP)",
                    self._context(),
                    skew.describe(),
                )
            else:
                log.warning(
                    "lease clock within bounds again %s skew=%s",
                    self._context(),
                    "unknown" if skew is None else skew.describe(),
                )
        return skew if skewed else None

    def _claim_refusal(self, slot: datetime) -> str | None:
        """Why our wall clock may not claim ``slot``, or None: beyond the bound, or the slot
        further ahead of the store's time (tracked on our monotonic clock since its last
        answer, so a wall clock stepped since then cannot hide) than the bound."""
        skew = self._skew_beyond_bound()
        if skew is not None:
            return f"this host's wall clock is {skew.describe()}"
        bounds = self._store_clock.store_time()
        bound = self.timings.max_clock_skew_seconds
        if bounds is not None and slot.timestamp() - bounds[0] > bound:
            return (
                f"slot {slot.isoformat()} is {slot.timestamp() - bounds[0]:.1f} s ahead of the "
                f"store's clock (at most {bound:g} s allowed): this host's wall clock is wrong"
            )
        return None

    def _step_down_skewed(self, tenure: _Tenure, reason: str) -> None:
        """Stop leading at once and release, so a standby with a correct clock acquires the
        free lease within a poll instead of waiting lease_seconds."""
        with self._lock:
            if self._tenure is not tenure:
                return
            self._step_down(reason)
            self._lease_due = self._clock()
        self._release_quietly(tenure.token)

    def _release_quietly(self, token: int) -> None:
        try:
            self.store.release(self.name, self.identity, token, new_version=new_version())
        except StoreError as exc:
            log.warning(
                "lease release failed %s error=%s: a standby takes over after lease_seconds=%s",
                self._context(),
                exc,
                self.timings.lease_seconds,
            )

    def _heartbeat(self) -> float:
        self._sequence += 1
        skew = self.clock_skew()
        detail = dict(self._heartbeat_detail or {})
        if skew is not None:
            detail |= skew.detail()
        self.store.heartbeat(
            self.name,
            self.identity,
            role=self._role.value,
            ttl_seconds=self.timings.lease_seconds,
            sequence=self._sequence,
            detail=detail,
        )
        return self._clock() + self.timings.renew_seconds

    def valid(self) -> bool:
        """Leader and last successful renewal (timed from before the request was sent) younger
        than safe_seconds on our monotonic clock."""
        return self.safe_remaining() > 0.0

    def safe_remaining(self) -> float:
        """Seconds until valid() turns false (0.0 if not leader)."""
        return self._safe_remaining(self._tenure)

    def _safe_remaining(self, tenure: _Tenure | None) -> float:
        if tenure is None:
            return 0.0
        return max(0.0, self.timings.safe_seconds - (self._clock() - tenure.renewed_at))

    def fence(self, entries: Collection[str], *, everything: bool) -> dict[str, EntryClaim] | None:
        """Fence ``entries`` (with ``everything``: and every entry the store has a claim of) for
        this tenure before claiming them, and return their last claims: see
        ``LeaseStore.fence``. None, without asking the store if not valid(), when this tenure
        may not claim; a refusal by the store drops leadership (on_stop_leading). O(entries)
        writes on DynamoDB: once per tenure, and once for each entry new to the schedule.
        StoreUnavailable propagates (the caller fences again later)."""
        tenure = self._tenure
        if self._safe_remaining(tenure) <= 0.0:
            return None
        claims = self.store.fence(
            self.name, entries, identity=self.identity, token=tenure.token, everything=everything
        )
        log.info(
            "lease fenced %s token=%d entries=%d everything=%s claims=%s",
            self._context(),
            tenure.token,
            len(entries),
            everything,
            "refused" if claims is None else len(claims),
        )
        if claims is None:
            self._lost(tenure, "fence refused: the lease is no longer ours")
        return claims

    def _lost(self, tenure: _Tenure, reason: str) -> None:
        """The store refused ``tenure``: step down (unless already done) and read the lease at
        once."""
        with self._lock:
            if self._tenure is tenure:
                self._step_down(reason)
                self._lease_due = self._clock()

    def claim(self, entry: str, slot: datetime) -> ClaimResult:
        """Fenced claim of one run. Not valid() -> LEASE_LOST without asking the store, unless an
        earlier attempt at this very slot lost its answer: then the store is read to tell whether
        that attempt was stored (CLAIMED) or not. LEASE_LOST from the store drops leadership
        (on_stop_leading); so does a wall clock beyond max_clock_skew_seconds, or a slot that
        far ahead of the store's time, without asking the store, and the lease is released.
        Our own retried write (same claim id stored) counts as CLAIMED. StoreUnavailable
        propagates (the caller retries later, with the same claim id)."""
        key = (entry, slot_millis(slot))
        tenure = self._tenure
        if self._safe_remaining(tenure) <= 0.0:
            return self._claim_without_lease(entry, slot, key, tenure)
        with self._claims_lock:
            asked_before = key in self._pending_claims
        # An attempt whose answer was lost was judged when it was sent: asking again with its
        # claim id only tells whether it was stored.
        refusal = None if asked_before else self._claim_refusal(slot)
        if refusal is not None:
            self._step_down_skewed(tenure, f"claim refused: {refusal}")
            return ClaimResult(ClaimOutcome.LEASE_LOST, entry, slot, None, refusal)
        with self._claims_lock:
            claim_id = self._pending_claims.pop(key, None) or new_version()
            self._pending_claims[key] = claim_id
            while len(self._pending_claims) > PENDING_CLAIMS_KEPT:
                del self._pending_claims[next(iter(self._pending_claims))]
            # Outstanding from before the request: a renewal meanwhile must not acknowledge it.
            epoch = self._outstanding.get(key)
            if epoch is None:
                self._epoch += 1
                epoch = self._outstanding[key] = self._epoch
            acked = self._acknowledgement(tenure.token)
        result = self.store.claim(
            self.name,
            entry,
            slot,
            identity=self.identity,
            token=tenure.token,
            claim_id=claim_id,
            epoch=epoch,
            acked=acked,
        )
        with self._claims_lock:
            self._pending_claims.pop(key, None)
            if not result.claimed:
                self._outstanding.pop(key, None)
        log.debug(
            "lease claim %s entry=%s slot=%s token=%d outcome=%s reason=%r",
            self._context(),
            entry,
            slot.isoformat(),
            tenure.token,
            result.outcome.value,
            result.reason,
        )
        if result.outcome is ClaimOutcome.LEASE_LOST:
            self._lost(tenure, f"claim refused: {result.reason}")
        return result

    def _claim_without_lease(
        self, entry: str, slot: datetime, key: tuple[str, int], tenure: _Tenure | None
    ) -> ClaimResult:
        reason = (
            "not leading"
            if tenure is None
            else (f"no successful renewal for {self.timings.safe_seconds}s (safe time)")
        )
        with self._claims_lock:
            claim_id = self._pending_claims.get(key)
        if claim_id is None:
            return ClaimResult(ClaimOutcome.LEASE_LOST, entry, slot, None, reason)
        stored = self.store.read_claim(self.name, entry)
        result = claim_result(False, stored, reason, entry, slot, claim_id)
        with self._claims_lock:
            self._pending_claims.pop(key, None)
            if not result.claimed:
                self._outstanding.pop(key, None)
        # Only whether the stored claim is ours matters here, so no fence or token is compared.
        return result

    def release(self) -> None:
        """Clean shutdown: release if leader (the other side may acquire at once), remove our
        heartbeat, role STOPPED."""
        with self._lock:
            tenure = self._tenure
            self._step_down("released", role=Role.STOPPED)
            try:
                if tenure is not None:
                    self.store.release(
                        self.name, self.identity, tenure.token, new_version=new_version()
                    )
                self.store.leave(self.name, self.identity)
            except StoreUnavailable as exc:
                log.warning(
                    "lease release unavailable %s error=%s: a standby takes over after "
                    "lease_seconds=%s",
                    self._context(),
                    exc,
                    self.timings.lease_seconds,
                )
            self._lease_due = self._heartbeat_due = 0.0

    def read(self) -> LeaseRecord | None:
        return self.store.read(self.name)


class LeaseKeeper:
    """Background daemon thread calling ``lease.step()`` on its own schedule, so a long sleep of
    its owner (beat between two runs) never lets the lease lapse. start(); stop(release=True);
    wake() to step at once. If a step raises (a terminal store or config error) the thread logs
    it, keeps it in ``failure`` and ends; the lease then lapses and ``valid()`` turns false."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.failure: Exception | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self._stopping.clear()
        self.failure = None
        self._thread = threading.Thread(
            target=self._run, name=f"beat-lock-keeper:{self.lease.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                delay = self.lease.step()
            except BeatLockError as exc:
                self.failure = exc
                log.error("lease keeper stopped name=%s error=%s", self.lease.name, exc)
                return
            except Exception as exc:
                self.failure = exc
                log.exception("lease keeper stopped by a bug name=%s", self.lease.name)
                return
            self._wake.wait(delay)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, release: bool = True, timeout: float | None = None) -> None:
        """Stop stepping; with ``release`` give the lease up so the other side may take it."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if release:
            self.lease.release()
