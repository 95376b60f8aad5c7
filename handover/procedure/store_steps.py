"""The store steps of a handover: announce, pin (act), wait for the new leader (confirm), re-pin
to the previous environment (roll back).

The act is one conditional write: the pin to the target, conditional on the token preflight saw,
which also ends the current holder's tenure (token + 1, no holder). From that write on, the old
leader's next claim fails in the store whatever its own timers say, and only a participant of
the target may acquire. Before it, an announcement on the lease (which changes nothing the
fencing or a takeover relies on) makes the target's standbys read the lease every few tens of
milliseconds, so one of them acquires within moments of the pin rather than at its next
``poll_seconds`` read. Everything is timed on this host's monotonic clock.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from beat_handover.beat_lock.errors import StoreError, StoreUnavailable
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.procedure.model import Progress, Tenure
from beat_handover.scheduler.durations import format_duration

log = logging.getLogger(__name__)

# Poll often enough that the measured gap is within ~50 ms of the real one, yet cheap: one
# strongly consistent read per poll, only while a handover is waiting.
CONFIRM_POLL_SECONDS = 0.05
RETRY_SECONDS = 0.2
ROLLBACK_PIN_ATTEMPTS = 5
# A standby starts a read every poll_seconds; a read that starts late (a busy host) or takes long
# (a slow store) can see an announcement up to about this much later than one poll.
ANNOUNCE_MARGIN_FRACTION = 0.25
ANNOUNCE_MARGIN_SECONDS = 0.2

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Pinned:
    """A pin that is known to be in the store; ``started_at`` is when its request was sent."""

    record: LeaseRecord
    started_at: float

    @property
    def first_new_token(self) -> int:
        """The lowest token a holder in the pinned environment can have: the pinned token if it
        already held the lease (the pin ended no tenure), else the next one (a new acquire)."""
        return self.record.token + (1 if self.record.holder is None else 0)


@dataclass(frozen=True)
class Takeover:
    tenure: Tenure
    acquired_after_seconds: float
    renewed_after_seconds: float


class WaitEnd(enum.Enum):
    TAKEN = "taken"
    TIMED_OUT = "timed-out"
    PIN_CHANGED = "pin-changed"  # someone else pinned the lock meanwhile


@dataclass(frozen=True)
class Wait:
    end: WaitEnd
    takeover: Takeover | None
    last_seen: LeaseRecord | None


def announce_wait_seconds(poll_seconds: float) -> float:
    """How long after an announcement every standby that reads the lease every ``poll_seconds``
    has surely seen it, and reads every ANNOUNCED_POLL_SECONDS."""
    return poll_seconds * (1 + ANNOUNCE_MARGIN_FRACTION) + ANNOUNCE_MARGIN_SECONDS


def withdraw(store: LeaseStore, name: str, progress: Progress) -> None:
    """Best effort: withdraw an announced handover that is not going ahead. If the store does
    not answer, no harm done: standbys stop hurrying lease_seconds after they first saw it,
    and the next pin clears it."""
    try:
        store.announce(name, None, expected_token=None)
    except StoreError as exc:
        log.warning("announcement not withdrawn lock=%s error=%s", name, exc)
        progress.line(
            f"  the announcement could not be withdrawn ({exc}); harmless: standbys stop "
            "reading fast after one lease, and the next pin clears it"
        )
    else:
        progress.line("  the announcement was withdrawn")


def pin(
    store: LeaseStore,
    name: str,
    environment: str | None,
    *,
    expected_token: int | None,
    budget_seconds: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Pinned | None:
    """Pin ``name`` to ``environment`` and end a holder outside it, if the token is still
    ``expected_token``. None if the token moved on. If the store does not answer, a write that
    raised may still have happened, so the record is read back before any retry; raises
    StoreUnavailable if the store stays silent for ``budget_seconds`` (the outcome is unknown).
    """
    version = new_version()
    started = clock()
    while True:
        try:
            written = store.pin(
                name,
                environment,
                expected_token=expected_token,
                new_version=version,
                end_tenure=True,
            )
            return None if written is None else Pinned(written, started)
        except StoreUnavailable:
            log.warning("pin unanswered lock=%s environment=%s; reading back", name, environment)
            if clock() - started >= budget_seconds:
                raise
        seen = _read_back(store, name, started, budget_seconds, clock, sleep)
        if seen is not None and (
            seen.version == version
            or (seen.pin == environment and _moved_past(seen.token, expected_token))
        ):
            return Pinned(seen, started)
        if seen is not None and expected_token is not None and seen.token != expected_token:
            return None
        sleep(RETRY_SECONDS)


def _moved_past(token: int, expected_token: int | None) -> bool:
    return expected_token is None or token > expected_token


def _read_back(
    store: LeaseStore, name: str, started: float, budget_seconds: float, clock: Clock, sleep: Sleep
) -> LeaseRecord | None:
    while True:
        try:
            return store.read(name)
        except StoreUnavailable:
            if clock() - started >= budget_seconds:
                raise
            sleep(RETRY_SECONDS)


def wait_for_leader(
    store: LeaseStore,
    name: str,
    environment: str,
    *,
    min_token: int,
    started_at: float,
    timeout_seconds: float,
    progress: Progress,
    label: str,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    poll_seconds: float = CONFIRM_POLL_SECONDS,
) -> Wait:
    """Poll until a participant of ``environment`` holds the lease with a token of at least
    ``min_token`` and has renewed it once in its tenure (so it is really running, not just a
    write that went through), or until ``timeout_seconds`` after ``started_at``."""
    acquired_after: float | None = None
    last: LeaseRecord | None = None
    silent_noted = False
    while True:
        try:
            record = store.read(name)
        except StoreUnavailable as exc:
            # Waiting only reads, so an unanswered read is retried until the timeout decides.
            if not silent_noted:
                progress.line(f"  reading the lease failed ({exc}); still trying")
                silent_noted = True
        else:
            seen_after = clock() - started_at
            last = record
            if record is not None and record.pin != environment:
                return Wait(WaitEnd.PIN_CHANGED, None, record)
            holder = record.holder if record is not None else None
            if (
                holder is not None
                and holder.environment == environment
                and (record.token >= min_token)
            ):
                if acquired_after is None:
                    acquired_after = seen_after
                    progress.line(
                        f"  {holder} holds the lease (token {record.token}) after "
                        f"{format_duration(seen_after)}"
                    )
                if record.renewals >= 1:
                    progress.line(f"  {holder} renewed it after {format_duration(seen_after)}")
                    takeover = Takeover(Tenure(holder, record.token), acquired_after, seen_after)
                    return Wait(WaitEnd.TAKEN, takeover, record)
        elapsed = clock() - started_at
        if elapsed >= timeout_seconds:
            return Wait(WaitEnd.TIMED_OUT, None, last)
        progress.progress(label, elapsed)
        sleep(min(poll_seconds, timeout_seconds - elapsed))


@dataclass(frozen=True)
class Rollback:
    ok: bool
    pinned: Pinned | None
    wait: Wait | None
    error: str = ""


def roll_back(
    store: LeaseStore,
    name: str,
    environment: str | None,
    *,
    await_leader: bool,
    timeout_seconds: float,
    progress: Progress,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Rollback:
    """Pin the lock back to ``environment`` (ending any tenure outside it) and, if someone led
    there before, wait until a participant of it leads again."""
    pinned: Pinned | None = None
    try:
        for _attempt in range(ROLLBACK_PIN_ATTEMPTS):
            seen = _read_back(store, name, clock(), timeout_seconds, clock, sleep)
            pinned = pin(
                store,
                name,
                environment,
                expected_token=None if seen is None else seen.token,
                budget_seconds=timeout_seconds,
                clock=clock,
                sleep=sleep,
            )
            if pinned is not None:
                break
    except StoreError as exc:
        return Rollback(False, None, None, f"the store failed: {exc}")
    if pinned is None:
        return Rollback(
            False,
            None,
            None,
            f"the lease kept changing: {ROLLBACK_PIN_ATTEMPTS} conditional pins were refused",
        )
    progress.line(
        f"  pinned back to {environment or 'any environment'} (token {pinned.record.token})"
    )
    if not await_leader or environment is None:
        return Rollback(True, pinned, None)
    try:
        wait = wait_for_leader(
            store,
            name,
            environment,
            min_token=pinned.first_new_token,
            started_at=pinned.started_at,
            timeout_seconds=timeout_seconds,
            progress=progress,
            label=f"waiting for {environment} to lead again",
            clock=clock,
            sleep=sleep,
        )
    except StoreError as exc:
        progress.end_wait()
        return Rollback(False, pinned, None, f"the lease could not be read back: {exc}")
    progress.end_wait()
    if wait.end is WaitEnd.TAKEN:
        return Rollback(True, pinned, wait)
    return Rollback(False, pinned, wait, f"{environment} did not lead again ({wait.end.value})")
