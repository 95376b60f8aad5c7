"""Slots in doubt: claimed, but whether their run was published is not known.

A slot is in doubt when the tenure that claimed it cannot say it was published: the claim's
answer was lost and the lease ran out before it was resolved, the leader was paused or cut off
between the claim and the publish, the process died there, or the broker refused the publish.
The store holds the claim, so no later leader sends that slot as a new run; without this module
nobody would send it and nothing would say so.

What happens to a slot in doubt depends on whether a second copy of the run does harm:

- **safe to repeat** (named in ``beat_lock_repeat_safe``, or its task is based on the worker-side
  guard :class:`~beat_handover.scheduler.guard.OncePerSlotTask`, which drops a second delivery of
  a slot): the leader sends it (again), with the header ``beat_lock_resent_from`` naming the
  tenure that claimed it, unless sending it now would be too late: later than
  ``beat_lock_max_lateness_seconds``, or, for an entry whose catch-up policy is ``none`` (the
  critical ones), later than the on-time grace (then it is reported instead);
- **otherwise**: it is never sent again; the leader logs it at ERROR naming the entry and slot,
  keeps it in the store (``handover status`` lists it) until an operator acknowledges it
  (``handover ack-in-doubt``), and writes it to the lock's history.

How a new leader finds the slots of earlier tenures in doubt: its fence reads each entry's last
claim, with the claimant's token, the claim's number in its tenure and the acknowledgement it
carried, and it reads the lease record's acknowledgement
(:class:`~beat_handover.beat_lock.record.Acked`); a claim the latest of these does not cover is
in doubt. A former leader that is still alive writes its last acknowledgement when it notices its
tenure ended (a pin ends it unannounced, so it notices at its next renewal or claim), so the new
leader waits up to ``safe_seconds`` for it before judging; a former leader that does not answer
by then (killed, cut off, paused) leaves its unacknowledged claims in doubt.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.errors import StoreError
from beat_handover.beat_lock.lease import Lease
from beat_handover.beat_lock.record import Acked, AuditEvent, Doubt, EntryClaim, LeaseRecord
from beat_handover.scheduler.headers import format_slot

logger = logging.getLogger(__name__)

AUDIT_KIND = "in-doubt"


@dataclass(frozen=True)
class Resend:
    """A slot to send again: who claimed it, and why it is in doubt."""

    entry: str
    slot: datetime
    token: int
    reason: str


class InDoubtSlots:
    """The in-doubt bookkeeping of one leased scheduler.

    ``counts`` holds, for metrics: ``resent`` and ``reported`` (slots sent again or reported,
    since start), and ``awaiting`` (earlier tenures' claims waiting for their acknowledgement
    now). ``on_event``, if set, is called with (``"resent"`` or ``"reported"``, entry, slot) each
    time one is counted; an exception from it is logged and ignored."""

    def __init__(
        self,
        lease: Lease,
        *,
        repeat_safe: Callable[[str], bool],
        too_late: Callable[[str, datetime], str | None],
        wait_seconds: float,
        reread_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.repeat_safe = repeat_safe
        self.too_late = too_late  # why a slot may no longer be sent (None: it may)
        self.wait_seconds = wait_seconds
        self.reread_seconds = reread_seconds
        self._clock = clock
        self.counts: Counter[str] = Counter()
        self.on_event: Callable[[str, str, datetime], None] | None = None
        self._awaiting: dict[str, EntryClaim] = {}  # earlier tenures' claims, by entry
        self._claims_acked: Acked | None = None  # the latest acknowledgement a claim carried
        self._judge_at = 0.0  # when the awaiting claims are judged, acknowledged or not
        self._read_at = 0.0  # when the acknowledgement is read again
        self._resends: dict[tuple[str, datetime], Resend] = {}
        self._unrecorded: dict[tuple[str, datetime], Doubt] = {}

    # -- a new tenure --------------------------------------------------------------------------

    def begin(self, token: int, claims: Mapping[str, EntryClaim]) -> None:
        """Tenure ``token`` fenced and read ``claims``: its earlier tenures' claims that the
        lease record does not acknowledge wait for the former leader's last word."""
        record = self.lease.read()
        # Each claim carried its tenure's acknowledgement as it was then; the record holds the
        # renewals' and a former holder's last word. The latest of them all counts.
        self._claims_acked = max(
            (claim.acked for claim in claims.values() if claim.acked is not None), default=None
        )
        acked = self._latest(record)
        self._awaiting = {
            name: claim
            for name, claim in claims.items()
            if claim.token < token and not claim.acked_by(acked)
        }
        self._resends.clear()
        self.counts["awaiting"] = len(self._awaiting)
        if not self._awaiting:
            self.lease.predecessors_resolved()
            return
        now = self._clock()
        self._judge_at, self._read_at = now + self.wait_seconds, now + self.reread_seconds
        logger.info(
            "token=%d: %d claim(s) of earlier tenures not acknowledged (%s); waiting up to %gs "
            "for the former leader's acknowledgement before judging them in doubt",
            token,
            len(self._awaiting),
            ", ".join(
                f"{c.entry}@{format_slot(c.slot)} (token {c.token})"
                for c in self._awaiting.values()
            ),
            self.wait_seconds,
        )

    def judge(self) -> None:
        """Drop the awaiting claims acknowledged since; once the wait is over, the rest are in
        doubt. StoreUnavailable propagates (asked again on a later tick)."""
        if not self._awaiting:
            return
        now = self._clock()
        if now >= self._read_at or now >= self._judge_at:
            self._read_at = now + self.reread_seconds
            acked = self._latest(self.lease.read())
            self._awaiting = {
                name: claim for name, claim in self._awaiting.items() if not claim.acked_by(acked)
            }
        if self._awaiting and now >= self._judge_at:
            for claim in self._awaiting.values():
                self.in_doubt(
                    claim.entry,
                    claim.slot,
                    claim.token,
                    claim.environment,
                    f"claimed by token {claim.token} ({claim.environment}), whose tenure ended "
                    "without acknowledging its publish",
                )
            self._awaiting = {}
        self.counts["awaiting"] = len(self._awaiting)
        if not self._awaiting:
            self.lease.predecessors_resolved()

    def _latest(self, record: LeaseRecord | None) -> Acked | None:
        found = [self._claims_acked, record.acked if record is not None else None]
        return max((acked for acked in found if acked is not None), default=None)

    # -- one slot in doubt ---------------------------------------------------------------------

    def in_doubt(
        self, entry: str, slot: datetime, token: int, environment: str, reason: str
    ) -> None:
        """Send ``slot`` again if a repeat does no harm and it is not too late, else report it."""
        late = self.too_late(entry, slot)
        if self.repeat_safe(entry) and late is None:
            self._resends[(entry, slot)] = Resend(entry, slot, token, reason)
            logger.warning(
                "entry=%s slot=%s in doubt (%s): safe to repeat, sending it again",
                entry,
                format_slot(slot),
                reason,
            )
            return
        if late is not None:
            reason += f"; not resent: {late}"
        self.report(
            Doubt(
                entry=entry,
                slot=slot,
                token=token,
                environment=environment,
                reason=reason,
                noticed_at=datetime.now(UTC),
                noticed_by=self.lease.identity.instance_id,
            )
        )

    def report(self, doubt: Doubt) -> None:
        """Log at ERROR, keep in the store until an operator acknowledges it, write history."""
        logger.error(
            "entry=%s slot=%s IN DOUBT: claimed by token %d but its publish is not known (%s); "
            "not sent again: check whether it ran, then `handover ack-in-doubt %s %s`",
            doubt.entry,
            format_slot(doubt.slot),
            doubt.token,
            doubt.reason,
            doubt.entry,
            format_slot(doubt.slot),
        )
        self._count("reported", doubt.entry, doubt.slot)
        self._record(doubt)

    def _record(self, doubt: Doubt) -> None:
        key = (doubt.entry, doubt.slot)
        try:
            new = self.lease.store.record_doubt(self.lease.name, doubt)
        except StoreError as exc:
            logger.warning(
                "entry=%s slot=%s in doubt, not recorded yet (asking again): %s",
                doubt.entry,
                format_slot(doubt.slot),
                exc,
            )
            self._unrecorded[key] = doubt
            return
        self._unrecorded.pop(key, None)
        self.lease.settle(doubt.entry, doubt.slot)
        if new:
            self._history(
                "reported",
                doubt.entry,
                doubt.slot,
                {"token": doubt.token, "environment": doubt.environment, "reason": doubt.reason},
            )

    def record_again(self) -> None:
        """Ask the store again to keep the doubts it did not answer about."""
        for doubt in list(self._unrecorded.values()):
            self._record(doubt)

    # -- sending again -------------------------------------------------------------------------

    def resend_own(self, entry: str, slot: datetime, token: int, reason: str) -> None:
        """Send again a slot this very tenure claimed and knows it did not publish: safe for
        any entry, since no other tenure can have sent it."""
        self._resends[(entry, slot)] = Resend(entry, slot, token, reason)

    def resends(self) -> list[Resend]:
        """The slots to send again now, oldest first."""
        return sorted(self._resends.values(), key=lambda resend: resend.slot)

    def resent(self, resend: Resend, token: int) -> None:
        """``resend`` went out under tenure ``token``."""
        self._resends.pop((resend.entry, resend.slot), None)
        self.lease.settle(resend.entry, resend.slot)
        self._count("resent", resend.entry, resend.slot)
        self._history(
            "resent",
            resend.entry,
            resend.slot,
            {"token": token, "claimed_by": resend.token, "reason": resend.reason},
        )

    def give_up(self, resend: Resend, environment: str, why: str) -> None:
        """``resend`` cannot go out (``why``): report it instead."""
        self._resends.pop((resend.entry, resend.slot), None)
        self.report(
            Doubt(
                entry=resend.entry,
                slot=resend.slot,
                token=resend.token,
                environment=environment,
                reason=f"{resend.reason}; {why}",
                noticed_at=datetime.now(UTC),
                noticed_by=self.lease.identity.instance_id,
            )
        )

    def drop_resends(self) -> None:
        """The tenure ended: the next leader judges what this one had not sent."""
        self._resends.clear()
        self._awaiting = {}
        self.counts["awaiting"] = 0

    # -- for people and metrics ----------------------------------------------------------------

    def _count(self, kind: str, entry: str, slot: datetime) -> None:
        self.counts[kind] += 1
        if self.on_event is None:
            return
        try:
            self.on_event(kind, entry, slot)
        except Exception:
            logger.exception("the in-doubt callback %r failed", self.on_event)

    def _history(self, result: str, entry: str, slot: datetime, detail: Mapping[str, Any]) -> None:
        identity = self.lease.identity
        event = AuditEvent(
            at=datetime.now(UTC),
            kind=AUDIT_KIND,
            actor=identity.instance_id,
            host=socket.gethostname(),
            result=result,
            detail={"entry": entry, "slot": format_slot(slot), **detail},
        )
        try:
            self.lease.store.record_event(self.lease.name, event)
        except StoreError as exc:
            logger.warning("in-doubt history not written entry=%s error=%s", entry, exc)
