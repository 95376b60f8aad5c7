"""Which slots of one schedule entry are due now, and which of them to send (the catch-up policy).

A slot is a run's scheduled fire time (aware UTC). Everything here is a pure function of the
schedule, the entry's position (``since``/``anchor``, from the store's last claimed slot), the time
``now`` and the rules, so two environments that read the same claims decide the same, and tests
can drive it with a fake clock.

Rules, for the slots ``s`` with ``since < s <= now``:

- **on time**: ``now - s <= grace`` (``BeatLockSettings.grace_seconds``, max(2 x poll, 5 s)). An
  on-time slot is always sent, whatever the policy: a leader that stalled for a few seconds, or a
  standby that took over within the grace, loses nothing.
- **late**: older than the grace. The entry's policy decides: ``latest`` sends the newest late
  slot once, and only if no slot is on time (the on-time run is the catch-up: after downtime
  Celery also runs an entry once, not twice), ``all`` sends the newest ``limit`` late slots,
  oldest first, ``none`` sends none of them.
- **missed**: older than ``max_lateness``. Never sent, whatever the policy (never enumerated, so a
  one-second entry that was down for a week costs nothing).

Slots the rules leave out are skipped for good: a claim must be later than the entry's last
claimed slot, so once a later slot is claimed an earlier one can never be sent.

Where an entry starts: an entry the store has never seen a claim for starts at ``now - grace``,
so a beat that starts a few seconds after a crontab fire time still sends that run; an interval
entry has no phase until its first claim, so, as stock beat counts from the moment it first sees
an entry, the leader counts from the moment it first decides on it (whole seconds): its first slot
is one interval later (a relative one: Celery's rounded boundary), and every slot after the first
claim is that claim plus whole steps, the same in every environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from beat_handover.scheduler.errors import PhaseUnknown
from beat_handover.scheduler.firetimes import fire_times, next_fire_time
from beat_handover.scheduler.gates import OPEN, Gates


@dataclass(frozen=True)
class CatchUpRules:
    """How one entry treats slots that are not on time."""

    policy: str  # latest | all | none
    grace_seconds: float
    max_lateness_seconds: float
    limit: int  # most late slots policy ``all`` sends at once


@dataclass(frozen=True)
class Position:
    """Where an entry stands: slots after ``since`` are candidates; ``anchor`` is the last
    claimed slot (the phase of an interval entry), None if the entry was never claimed."""

    since: datetime
    anchor: datetime | None
    runs: int = 0

    @classmethod
    def start(
        cls, last_claimed: datetime | None, runs: int, now: datetime, grace_seconds: float
    ) -> Position:
        """The position of an entry whose last claimed slot in the store is ``last_claimed``."""
        if last_claimed is None:
            return cls(now - timedelta(seconds=grace_seconds), None, runs)
        return cls(last_claimed, last_claimed, runs)


@dataclass(frozen=True)
class Decision:
    """What to do with an entry's due slots now."""

    send: tuple[datetime, ...] = ()  # claim and publish these, oldest first
    first_seen: datetime | None = None  # no phase yet: count from here (nothing is due)
    skipped: tuple[datetime, ...] = ()  # late slots the policy does not send
    missed_before: datetime | None = None  # slots up to here were older than max lateness

    @property
    def last(self) -> datetime | None:
        """The newest slot this decision settles (sent or skipped)."""
        settled = self.send[-1:] + self.skipped[-1:]
        return max(settled) if settled else None


def decide(
    schedule: Any,
    position: Position,
    now: datetime,
    *,
    tz: tzinfo,
    rules: CatchUpRules,
    gates: Gates = OPEN,
) -> Decision:
    """The slots of ``schedule`` due at ``now`` after ``position``, split by ``rules``; a slot
    its ``gates`` do not admit is not a slot of this entry at all (neither sent nor skipped)."""
    horizon = now - timedelta(seconds=rules.max_lateness_seconds)
    start = max(position.since, horizon)
    try:
        due = [
            slot
            for slot in fire_times(schedule, start, now, tz=tz, anchor=position.anchor)
            if gates.admit(slot)
        ]
        if gates.once:
            due = due[-1:]
    except PhaseUnknown:
        return Decision(first_seen=now.replace(microsecond=0))
    missed_before = None
    if position.since < horizon:
        first = next_fire_time(schedule, position.since, tz=tz, anchor=position.anchor)
        if first is not None and first <= horizon:
            missed_before = horizon
    on_time_from = now - timedelta(seconds=rules.grace_seconds)
    late = [slot for slot in due if slot < on_time_from]
    on_time = tuple(due[len(late) :])
    chosen = _late_slots_to_send(late, on_time, rules)
    skipped = tuple(late[: len(late) - len(chosen)])
    return Decision(send=chosen + on_time, skipped=skipped, missed_before=missed_before)


def _late_slots_to_send(
    late: list[datetime], on_time: tuple[datetime, ...], rules: CatchUpRules
) -> tuple[datetime, ...]:
    """The newest late slots the policy sends (always a suffix of ``late``)."""
    if rules.policy == "latest" and not on_time:
        return tuple(late[-1:])
    if rules.policy == "all":
        return tuple(late[-rules.limit :])
    return ()


def next_due(schedule: Any, position: Position, now: datetime, *, tz: tzinfo) -> datetime | None:
    """When the entry next has a slot to decide on: its first fire time after ``now`` (every
    slot up to ``now`` has been decided), ``now`` for an interval entry without a phase, None
    if it never fires again (a clocked time that has passed)."""
    try:
        return next_fire_time(schedule, max(position.since, now), tz=tz, anchor=position.anchor)
    except PhaseUnknown:
        return now
