"""Celery beat that dispatches only through fenced slot claims: ``celery -A proj beat -S leased``.

Run it in every environment at once. Each beat joins the lock as a participant; one leads, the
others stand by. A :class:`~beat_handover.beat_lock.lease.LeaseKeeper` thread keeps the lease on its
own schedule, so a long sleep of beat's loop never lets it lapse. The loop dispatches only while
``lease.valid()``, and for each due slot (see :mod:`beat_handover.scheduler.slots`) it claims the
slot in the store and publishes the run only if the claim succeeded, with headers naming the slot
and token.

Guaranteed: a slot is published at most once, and only by the current holder (a paused or
partitioned former leader's claims fail at the store); a new leader, in any environment, first
fences every entry's claims in the store (from then on a former leader's claims are refused) and
resumes from them. A claim whose answer was lost is asked again (same claim id, see
``Lease.claim``) before anything else of its entry, and published if it turns out ours. Not
guaranteed: a run whose claim succeeded but whose publish then failed (broker down past kombu's
retries, the process killed in between) is lost, not resent; a claim cannot be undone, and
resending could send it twice. That case is logged at ERROR with the entry and slot.
"""

from __future__ import annotations

import enum
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from celery.exceptions import CeleryCommandException

from beat_handover.beat_lock.errors import ConfigError, StoreMissing, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease, LeaseKeeper
from beat_handover.beat_lock.location import LockLocation
from beat_handover.beat_lock.record import ClaimOutcome, EntryClaim
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.scheduler.errors import UnsupportedSchedule
from beat_handover.scheduler.headers import format_slot, run_headers
from beat_handover.scheduler.held_signals import HeldSignals
from beat_handover.scheduler.settings import BeatLockSettings
from beat_handover.scheduler.slots import CatchUpRules, Decision, Position, decide, next_due

logger = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01  # a lease about to expire must not turn beat's loop into a spin


class BeatStartupError(ConfigError, CeleryCommandException):
    """A setting or the store is wrong at start-up. ``celery beat`` prints it as one line
    (``Error: ...``) and exits with status 78 (EX_CONFIG) instead of a traceback."""

    def __init__(self, error: Exception) -> None:
        CeleryCommandException.__init__(
            self, message=f"leased beat scheduler: {error}", exit_code=os.EX_CONFIG
        )


class _Step(enum.Enum):
    SENT = "sent"  # claimed (and published, or publishing failed and was logged)
    TAKEN = "taken"  # already claimed by someone: our view of the entry was stale
    UNANSWERED = "unanswered"  # the store did not answer: ask again on a later tick
    LOST = "lost"  # the lease is gone: stop dispatching


class LeasedScheduler(Scheduler):
    """A beat scheduler whose schedule state lives in the lease store, not in a local file."""

    def __init__(self, app: Any, *args: Any, lazy: bool = False, **kwargs: Any) -> None:
        try:
            self.settings = BeatLockSettings.from_app(app)
            self.location: LockLocation = self.settings.require_location()
            self.environment: str = self.settings.require_environment()
        except ConfigError as exc:
            raise BeatStartupError(exc) from None
        self.lease: Lease | None = None
        self._store: LeaseStore | None = None
        self._keeper: LeaseKeeper | None = None
        self._signals = HeldSignals()
        self._tenure: int | None = None  # the token whose claims the positions reflect
        self._fenced: int | None = None  # the token that fenced the entries of _positions
        self._positions: dict[str, Position] = {}
        self._due: dict[str, datetime] = {}
        self._unanswered: dict[str, datetime] = {}  # entry -> slot whose claim got no answer
        self._started = False
        self._closed = False
        super().__init__(app, *args, lazy=lazy, **kwargs)

    # -- set-up and shutdown -------------------------------------------------------------------

    def setup_schedule(self) -> None:
        """The schedule from ``beat_schedule`` (in memory only), and the lease, not yet started."""
        super().setup_schedule()
        self._store = self._open_store()
        identity = Identity.new(self.environment)
        self.lease = Lease(
            self._store,
            self.settings.name,
            identity,
            self.settings.timings,
            heartbeat_detail={"scheduler": "leased", "entries": len(self.schedule)},
        )
        self._keeper = LeaseKeeper(self.lease)
        logger.info(
            "leased beat joining lock=%s store=%s instance=%s entries=%d",
            self.settings.name,
            self.location.describe(),
            identity,
            len(self.schedule),
        )

    def _open_store(self) -> LeaseStore:
        try:
            store = open_store(self.location, self.settings.timings)
        except ConfigError as exc:
            raise BeatStartupError(exc) from None
        try:
            store.ping()
        except (StoreMissing, ConfigError) as exc:
            store.close()
            raise BeatStartupError(exc) from None
        except StoreUnavailable as exc:
            logger.warning("lease store not reachable yet, will keep trying: %s", exc)
        return store

    def close(self) -> None:
        """Stop dispatching, release the lease (the standby may lead at once), leave."""
        if not self._closed and self._keeper is not None:
            self._closed = True
            self._tenure = None
            self._keeper.stop(release=True)
            self._signals.uninstall()
            self._store.close()
            logger.info("leased beat stopped lock=%s", self.settings.name)
        super().close()

    # -- the loop ------------------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Dispatch every due slot while the lease is valid; return how long to sleep."""
        if self._closed:
            return self.max_interval
        if not self._started:
            if self._keeper is None:
                raise RuntimeError("a scheduler created with lazy=True cannot tick")
            self._started = True
            self._signals.install()
            self._keeper.start()
        if self._keeper.failure is not None:
            # A terminal store error (table deleted, corrupt record): exit loudly, do not idle.
            raise self._keeper.failure
        poll = min(self.settings.timings.poll_seconds, self.max_interval)
        if not self.schedules_equal(self.old_schedulers, self.schedule):
            self.old_schedulers = dict(self.schedule)
            self._tenure = None
        self._ask_unanswered()
        if not self.lease.valid():
            if self._tenure is not None:
                logger.info("not dispatching: lease not valid lock=%s", self.settings.name)
                self._tenure = None
            return poll
        token = self.lease.token
        if token != self._tenure and not self._begin_tenure(token):
            return poll
        now = self._now()
        for name in sorted(self._due, key=self._due.__getitem__):
            if self._due[name] > now:
                break
            if not self._dispatch_entry(name, now):
                return poll
        return self._sleep_seconds(self._now())

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _sleep_seconds(self, now: datetime) -> float:
        """Until the next due slot, but never past the safe time, a poll, or max_interval."""
        caps = [self.settings.timings.poll_seconds, self.max_interval, self.lease.safe_remaining()]
        if self._due:
            caps.append((min(self._due.values()) - now).total_seconds())
        return max(min(caps), MIN_SLEEP_SECONDS)

    def _begin_tenure(self, token: int | None) -> bool:
        """Fence the claims of every entry for this tenure, and take each entry's position from
        them; False if the store could not be asked or the lease is gone. The first time in a
        tenure the fence covers every entry the store has claims of (O(entries) writes, once);
        after that (a schedule change) only the entries new to the schedule."""
        everything = token != self._fenced
        names = [name for name in self.schedule if everything or name not in self._positions]
        claims: dict[str, EntryClaim] | None = {}
        if names or everything:
            try:
                claims = self.lease.fence(names, everything=everything)
            except StoreUnavailable as exc:
                logger.warning("leading but cannot fence the claims yet, not dispatching: %s", exc)
                return False
            if claims is None:
                return False
        self.producer  # noqa: B018 - connect to the broker before claiming anything
        now = self._now()
        kept = {} if everything else self._positions
        self._positions, self._due = {}, {}
        for name, entry in self.schedule.items():
            position = kept.get(name)
            if position is None:
                claim = claims.get(name)
                position = Position.start(
                    claim.slot if claim else None,
                    claim.runs if claim else 0,
                    now,
                    self.settings.grace_seconds,
                )
            self._positions[name] = position
            self._due[name] = now
            self._show(entry, position)
        self._tenure = self._fenced = token
        logger.info(
            "dispatching lock=%s environment=%s token=%s entries=%d",
            self.settings.name,
            self.environment,
            token,
            len(self._positions),
        )
        return True

    # -- one entry -----------------------------------------------------------------------------

    def _rules(self, name: str) -> CatchUpRules:
        return CatchUpRules(
            policy=self.settings.policy_for(name),
            grace_seconds=self.settings.grace_seconds,
            max_lateness_seconds=self.settings.max_lateness_seconds,
            limit=self.settings.catch_up_limit,
        )

    def _dispatch_entry(self, name: str, now: datetime) -> bool:
        """Decide, claim and publish this entry's due slots; False once the lease is lost."""
        entry = self.schedule[name]
        if name in self._unanswered:
            self._due[name] = now + timedelta(seconds=self.settings.timings.poll_seconds)
            return True
        tz = self.app.timezone
        try:
            decision = decide(
                entry.schedule, self._positions[name], now, tz=tz, rules=self._rules(name)
            )
        except UnsupportedSchedule as exc:
            logger.error("entry=%s is not dispatched by the leased scheduler: %s", name, exc)
            del self._due[name]
            return True
        except Exception:
            # One entry whose slots cannot be computed must not stop the others (as in Celery).
            logger.exception(
                "cannot compute the slots of entry=%s; trying again in %ss", name, self.max_interval
            )
            self._due[name] = now + timedelta(seconds=self.max_interval)
            return True
        self._log_left_out(name, decision)
        if decision.skipped:
            position = self._positions[name]
            self._positions[name] = Position(decision.skipped[-1], position.anchor, position.runs)
        for slot in decision.send:
            step = self._send(entry, slot)
            if step is _Step.LOST:
                return False
            if step is not _Step.SENT:
                # Unanswered: ask again after a poll. Taken: decide again from the stored claim.
                wait = self.settings.timings.poll_seconds if step is _Step.UNANSWERED else 0
                self._due[name] = now + timedelta(seconds=wait)
                return True
        self._due[name] = next_due(entry.schedule, self._positions[name], now, tz=tz)
        return True

    def _log_left_out(self, name: str, decision: Decision) -> None:
        if decision.missed_before is not None:
            logger.warning(
                "entry=%s runs due up to %s were more than max lateness (%gs) late: not sent",
                name,
                format_slot(decision.missed_before),
                self.settings.max_lateness_seconds,
            )
        if decision.skipped:
            logger.warning(
                "entry=%s policy=%s skipped %d late run(s) from slot=%s to slot=%s",
                name,
                self.settings.policy_for(name),
                len(decision.skipped),
                format_slot(decision.skipped[0]),
                format_slot(decision.skipped[-1]),
            )

    def _send(self, entry: ScheduleEntry, slot: datetime) -> _Step:
        """Claim one slot and publish it if the claim is ours; signals wait until it is done."""
        with self._signals.held():
            try:
                result = self.lease.claim(entry.name, slot)
            except StoreUnavailable as exc:
                self._unanswered[entry.name] = slot
                logger.warning(
                    "entry=%s slot=%s claim unanswered, asking again: %s",
                    entry.name,
                    format_slot(slot),
                    exc,
                )
                return _Step.UNANSWERED
            self._unanswered.pop(entry.name, None)
            if result.outcome is ClaimOutcome.LEASE_LOST:
                logger.info(
                    "entry=%s slot=%s not sent: lease lost (%s); standing by",
                    entry.name,
                    format_slot(slot),
                    result.reason,
                )
                self._tenure = self._fenced = None
                return _Step.LOST
            stored = result.last
            if result.outcome is ClaimOutcome.ALREADY_CLAIMED:
                logger.info(
                    "entry=%s slot=%s not sent: %s", entry.name, format_slot(slot), result.reason
                )
                if stored is not None and entry.name in self._positions:
                    self._settle(entry, Position(stored.slot, stored.slot, stored.runs))
                return _Step.TAKEN
            runs = stored.runs if stored is not None else self._positions[entry.name].runs + 1
            if entry.name in self._positions:
                self._settle(entry, Position(slot, slot, runs))
            self._publish(entry, slot, stored.token if stored is not None else self._tenure)
            return _Step.SENT

    def _ask_unanswered(self) -> None:
        """Ask again about claims whose answer was lost, before anything else of their entry:
        ``Lease.claim`` reuses the claim id, so a stored claim of ours comes back CLAIMED (and is
        published) and one that was not stored is made now or refused."""
        for name, slot in list(self._unanswered.items()):
            entry = self.schedule.get(name)
            if entry is None:
                logger.error(
                    "entry=%s slot=%s may have been claimed but the entry left the "
                    "schedule: not sent",
                    name,
                    format_slot(slot),
                )
                del self._unanswered[name]
                continue
            self._send(entry, slot)

    def _settle(self, entry: ScheduleEntry, position: Position) -> None:
        self._positions[entry.name] = position
        self._show(entry, position)

    def _publish(self, entry: ScheduleEntry, slot: datetime, token: int | None) -> None:
        headers = {
            **entry.options.get("headers", {}),
            **run_headers(entry.name, slot, token=token, environment=self.environment),
        }
        run = self.Entry(**{**dict(entry), "options": {**entry.options, "headers": headers}})
        logger.info(
            "Sending due task entry=%s task=%s slot=%s token=%s",
            entry.name,
            entry.task,
            format_slot(slot),
            token,
        )
        try:
            self.apply_async(run, producer=self.producer, advance=False)
        except Exception:
            # Whatever failed, the claim stands: say so loudly and keep the other entries going.
            logger.exception(
                "entry=%s slot=%s was claimed but could not be published; it will not be sent "
                "(a claim cannot be undone and resending could send it twice)",
                entry.name,
                format_slot(slot),
            )

    def _show(self, entry: ScheduleEntry, position: Position) -> None:
        """Mirror the store's view on the entry, for anything that inspects beat's schedule."""
        if position.anchor is not None:
            entry.last_run_at = position.anchor
        entry.total_run_count = position.runs

    # -- the banner ----------------------------------------------------------------------------

    @property
    def info(self) -> str:
        timings = self.settings.timings
        return "\n".join(
            [
                f"    . lock -> {self.settings.name} on {self.location.describe()}",
                f"    . environment -> {self.environment}",
                f"    . role -> {self._role_text()}",
                f"    . lease -> {timings.lease_seconds:g}s (renew {timings.renew_seconds:g}s, "
                f"safe {timings.safe_seconds:g}s, poll {timings.poll_seconds:g}s)",
                f"    . catch-up -> {self._catch_up_text()}",
            ]
        )

    def _catch_up_text(self) -> str:
        settings = self.settings
        parts = [
            f"latest by default, on time within {settings.grace_seconds:g}s, "
            f"never later than {settings.max_lateness_seconds:g}s"
        ]
        if settings.critical:
            parts.append(f"critical (none): {', '.join(settings.critical)}")
        if settings.catch_up:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(settings.catch_up.items())))
        return "; ".join(parts)

    def _role_text(self) -> str:
        """The running scheduler's role; for beat's banner (a lazy instance), what the store
        says this beat will do. A missing table or bad URL stops beat here, in one line."""
        if self.lease is not None:
            return self.lease.role.value
        store = self._open_store()
        try:
            record = store.read(self.settings.name)
        except StoreUnavailable as exc:
            return f"standby until it holds the lease (store not reachable yet: {exc})"
        finally:
            store.close()
        if record is not None and record.pin not in (None, self.environment):
            return f"standby: the lock is pinned to {record.pin}"
        if record is None or record.holder is None:
            return "leader as soon as it starts (the lease is free)"
        return f"standby until it holds the lease (held by {record.holder}, token {record.token})"
