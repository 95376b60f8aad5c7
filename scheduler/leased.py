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
``Lease.claim``) before anything else of its entry, and published if it turns out ours. A run
is published only while the claiming tenure's safe time lasts (``Lease.may_publish``; a tenure
a pin just ended still publishes what it claimed): a claim resolved, or a publish reached, after
the safe time ran out (a pause, a cut-off store) is not published here, and its slot is in
doubt for whoever leads next. A slot whose claim succeeded but whose
publish is not known (the broker refused it, the leader stopped in between) is **in doubt**
(:mod:`beat_handover.scheduler.in_doubt`): sent again if the entry is safe to repeat, else
reported (ERROR, ``handover status``) until an operator acknowledges it; never dropped silently.
Not guaranteed: a process stopped (SIGSTOP) after that check and before its publish left the
host still publishes that one run when it resumes, after the lease has moved.
"""

from __future__ import annotations

import enum
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from celery.exceptions import CeleryCommandException

from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreMissing,
    StoreUnavailable,
)
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease, LeaseKeeper
from beat_handover.beat_lock.location import LockLocation
from beat_handover.beat_lock.record import ClaimOutcome, EntryClaim
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.scheduler.entry_names import EntryNames, resolve_entry_names
from beat_handover.scheduler.errors import UnsupportedSchedule
from beat_handover.scheduler.gates import OPEN, Gates
from beat_handover.scheduler.guard import OncePerSlotTask
from beat_handover.scheduler.headers import RESENT_FROM, format_slot, run_headers
from beat_handover.scheduler.held_signals import HeldSignals
from beat_handover.scheduler.in_doubt import InDoubtSlots, Resend
from beat_handover.scheduler.metrics import BeatMetrics
from beat_handover.scheduler.settings import BeatLockSettings
from beat_handover.scheduler.slots import CatchUpRules, Decision, Position, decide, next_due
from beat_handover.scheduler.startup_checks import (
    app_timezone,
    check_beat_schedule,
    check_entries,
)

logger = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01  # a lease about to expire must not turn beat's loop into a spin


class BeatStartupError(ConfigError, CeleryCommandException):
    """A setting or the store is wrong at start-up. ``celery beat`` prints it as one line
    (``Error: ...``) and exits with status 78 (EX_CONFIG) instead of a traceback."""

    def __init__(self, error: Exception) -> None:
        CeleryCommandException.__init__(
            self, message=f"leased beat scheduler: {error}", exit_code=os.EX_CONFIG
        )


class _Published(enum.Enum):
    SENT = "sent"
    FAILED = "failed"  # the broker refused it: in doubt
    ABANDONED = "abandoned"  # the lease ran out before it: not sent, in doubt for the next leader


class _Step(enum.Enum):
    SENT = "sent"  # claimed (and published, or in doubt)
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
            self.metrics = BeatMetrics.from_settings(self.settings, self.environment)
            app_timezone(app)
            check_beat_schedule(app.conf.beat_schedule)
        except ConfigError as exc:
            raise BeatStartupError(exc) from None
        self.names = EntryNames()
        self.lease: Lease | None = None
        self._store: LeaseStore | None = None
        self._keeper: LeaseKeeper | None = None
        self._signals = HeldSignals()
        self._tenure: int | None = None  # the token whose claims the positions reflect
        self._fenced: int | None = None  # the token that fenced the entries of _positions
        self._positions: dict[str, Position] = {}
        self._due: dict[str, datetime] = {}
        self._unanswered: dict[str, datetime] = {}  # entry -> slot whose claim got no answer
        self._publishing: tuple[str, datetime] | None = None  # the run apply_entry is sending
        self._publish_error: BaseException | None = None  # why apply_entry's publish failed
        # Claims of ours not published because the lease ran out first, by tenure: sent if
        # that tenure resumes (nobody else can have sent them), else left to the next leader.
        self._abandoned: dict[tuple[str, datetime], int] = {}
        self.in_doubt: InDoubtSlots | None = None
        self._started = False
        self._closed = False
        super().__init__(app, *args, lazy=lazy, **kwargs)
        if lazy:
            # celery beat prints its banner from a lazy instance before starting the real one:
            # refusing here is the one place a mistake stops beat in one line, not a traceback.
            self.names = self._checked(self.read_entries())

    def read_entries(self) -> dict[str, ScheduleEntry]:
        """The entries this scheduler runs: the live schedule once set up, else
        :meth:`entries_of` its app."""
        if self.lease is not None:
            return dict(self.schedule)
        return self.entries_of(self.app)

    @classmethod
    def entries_of(cls, app: Any) -> dict[str, ScheduleEntry]:
        """The entries this scheduler class runs for `app`, read without a lease, a store or
        writing anything: ``beat_schedule`` and Celery's default entries, in memory. A scheduler
        composed with another schedule source overrides this to read that source."""
        stock = Scheduler(app, lazy=True)
        Scheduler.setup_schedule(stock)
        written = [name for name in app.conf.beat_schedule or {} if name in stock.schedule]
        defaults = sorted(set(stock.schedule) - set(written))
        return {name: stock.schedule[name] for name in [*written, *defaults]}  # as written

    def _checked(self, entries: dict[str, ScheduleEntry]) -> EntryNames:
        """Every entry can be fenced, and the critical and catch-up names resolve against them."""
        try:
            check_entries(entries)
            return resolve_entry_names(
                entries, self.settings.critical, self.settings.catch_up, self.settings.repeat_safe
            )
        except ConfigError as exc:
            raise BeatStartupError(exc) from None

    # -- set-up and shutdown -------------------------------------------------------------------

    def setup_schedule(self) -> None:
        """The schedule (``beat_schedule`` in memory, or the composed scheduler's source), checked
        (every entry can be fenced; critical and catch-up names match entries), and the lease,
        not yet started."""
        super().setup_schedule()
        self.names = self._checked(dict(self.schedule))
        self._store = self._open_store()
        identity = Identity.new(self.environment)
        self.lease = Lease(
            self.metrics.timed(self._store),
            self.settings.name,
            identity,
            self.settings.timings,
            heartbeat_detail={"scheduler": "leased", "entries": len(self.schedule)},
        )
        self._keeper = LeaseKeeper(self.lease)
        self.in_doubt = InDoubtSlots(
            self.lease,
            repeat_safe=self.repeat_safe,
            too_late=self.too_late,
            wait_seconds=self.settings.timings.safe_seconds,
            reread_seconds=self.settings.timings.poll_seconds,
        )
        # Each slot found in doubt (resent or reported) is one runs.in_doubt.
        self.in_doubt.on_event = lambda _kind, entry, _slot: self.metrics.in_doubt(entry)
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
            self.metrics.stop()
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
            self.metrics.start(self.lease)
        if self._keeper.failure is not None:
            # A terminal store error (table deleted, corrupt record): exit loudly, do not idle.
            raise self._keeper.failure
        poll = min(self.settings.timings.poll_seconds, self.max_interval)
        if not self.schedules_equal(self.old_schedulers, self.schedule):
            self.old_schedulers = dict(self.schedule)
            self._tenure = None
            self._names_changed()
        self._ask_unanswered()
        if not self.lease.valid():
            if self._tenure is not None:
                logger.info("not dispatching: lease not valid lock=%s", self.settings.name)
                self._tenure = None
            return poll
        token = self.lease.token
        if token != self._tenure and not self._begin_tenure(token):
            return poll
        if not self._settle_doubts():
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
                if claims is not None and everything:
                    self.in_doubt.begin(token, claims)
            except StoreUnavailable as exc:
                logger.warning("leading but cannot fence the claims yet, not dispatching: %s", exc)
                return False
            if claims is None:
                return False
        self._take_back_abandoned(token)
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

    # -- slots in doubt ------------------------------------------------------------------------

    def repeat_safe(self, name: str) -> bool:
        """A second copy of this entry's run does no harm: named in ``beat_lock_repeat_safe``,
        or its task (as this beat's app knows it) is based on the worker-side guard, which
        drops a second delivery of a slot."""
        if name in self.names.repeat_safe:
            return True
        entry = self.schedule.get(name)
        task = self.app.tasks.get(entry.task) if entry is not None else None
        return isinstance(task, OncePerSlotTask)

    def too_late(self, name: str, slot: datetime) -> str | None:
        """Why a slot in doubt may no longer be sent now, or None: the rules of a late run
        (max lateness for every entry; the on-time grace for catch-up policy none, the critical
        entries' default, which are never sent late by surprise)."""
        late = (self._now() - slot).total_seconds()
        if late > self.settings.max_lateness_seconds:
            return f"{late:.0f}s late, more than max lateness"
        if self.names.policy(name) == "none" and late > self.settings.grace_seconds:
            return (
                f"{late:.0f}s late, and its catch-up policy is none (on time only within "
                f"{self.settings.grace_seconds:g}s)"
            )
        return None

    def _take_back_abandoned(self, token: int | None) -> None:
        """Claims this beat did not publish because its lease ran out: its own tenure resumed,
        so nobody else can have sent them, and they go out now; another tenure leads, so they
        are its to judge."""
        for (name, slot), claimed_by in list(self._abandoned.items()):
            del self._abandoned[(name, slot)]
            if claimed_by == token:
                self.in_doubt.resend_own(
                    name, slot, claimed_by, "not published before the lease ran out"
                )

    def _settle_doubts(self) -> bool:
        """Judge the earlier tenures' unacknowledged claims once their wait is over, keep the
        doubts the store has not recorded yet, and send again what is to be sent again; False
        once the lease is lost."""
        try:
            self.in_doubt.judge()
        except StoreUnavailable as exc:
            logger.warning("cannot read the acknowledgement of earlier claims yet: %s", exc)
        self.in_doubt.record_again()
        for resend in self.in_doubt.resends():
            late = self.too_late(resend.entry, resend.slot)
            if late is not None:
                self.in_doubt.give_up(resend, self.environment, f"not resent: {late}")
                continue
            entry = self.schedule.get(resend.entry)
            if entry is None:
                self.in_doubt.give_up(resend, self.environment, "the entry left the schedule")
                continue
            with self._signals.held():
                published = self._publish(entry, resend.slot, self._tenure, resend=resend)
            if published is _Published.SENT:
                self.in_doubt.resent(resend, self._tenure)
            elif published is _Published.ABANDONED:
                return False
            else:
                break  # the broker still refuses: try again on a later tick
        return True

    # -- one entry -----------------------------------------------------------------------------

    def _names_changed(self) -> None:
        """Resolve the critical and catch-up names again after the schedule changed (a schedule
        database edited live); a name that no longer matches keeps the last resolution, loudly."""
        try:
            self.names = resolve_entry_names(
                self.schedule,
                self.settings.critical,
                self.settings.catch_up,
                self.settings.repeat_safe,
            )
        except ConfigError as exc:
            logger.error("the schedule changed: %s; keeping the previous resolution", exc)

    def _rules(self, name: str) -> CatchUpRules:
        return CatchUpRules(
            policy=self.names.policy(name),
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
            gates = self.entry_gates(entry, now)
            decision = self._decide(entry, now, gates)
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
        settled = max(filter(None, (decision.missed_before, *decision.skipped[-1:])), default=None)
        if settled is not None:
            # Missed and skipped slots are gone for good: decide from after them from now on.
            position = self._positions[name]
            self._positions[name] = Position(settled, position.anchor, position.runs)
        for slot in decision.send:
            step = self._send(entry, slot)
            if step is _Step.LOST:
                return False
            if step is not _Step.SENT:
                # Unanswered: ask again after a poll. Taken: decide again from the stored claim.
                wait = self.settings.timings.poll_seconds if step is _Step.UNANSWERED else 0
                self._due[name] = now + timedelta(seconds=wait)
                return True
        due = next_due(entry.schedule, self._positions[name], now, tz=tz)
        # Never firing again (a clocked time that has passed): look again later all the same,
        # so the entry's gates see it ran (django-celery-beat then disables a one-off).
        self._due[name] = due or now + timedelta(seconds=self.max_interval)
        return True

    def _decide(self, entry: ScheduleEntry, now: datetime, gates: Gates) -> Decision:
        """The entry's decision; an entry with no phase yet is given one first: the entry's own
        ``last_run_at`` (the moment stock beat counts from: when the entry was made, or the
        time a schedule database holds), else now, and the slots from there are decided."""
        position = self._positions[entry.name]
        tz, rules = self.app.timezone, self._rules(entry.name)
        decision = decide(entry.schedule, position, now, tz=tz, rules=rules, gates=gates)
        if decision.first_seen is None:
            return decision
        anchor = decision.first_seen
        seen = entry.last_run_at
        if isinstance(seen, datetime) and seen.utcoffset() is not None and seen <= now:
            anchor = seen.astimezone(UTC).replace(microsecond=0)
        self._positions[entry.name] = Position(anchor, anchor, position.runs)
        return decide(
            entry.schedule, self._positions[entry.name], now, tz=tz, rules=rules, gates=gates
        )

    def entry_gates(self, entry: ScheduleEntry, now: datetime) -> Gates:
        """The gates of `entry` besides its schedule (:mod:`beat_handover.scheduler.gates`).
        Stock entries have none; a scheduler composed with a schedule source whose entries are
        gated (django-celery-beat: enabled, start_time, expires, one_off) overrides this."""
        return OPEN

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
                self.names.policy(name),
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
            if not result.claimed:
                self.metrics.refused(entry.name, result.outcome.value)
            if result.outcome is ClaimOutcome.LEASE_LOST:
                logger.info(
                    "entry=%s slot=%s not sent: lease lost (%s); standing by",
                    entry.name,
                    format_slot(slot),
                    result.reason,
                )
                self._tenure = self._fenced = None
                self.in_doubt.drop_resends()
                return _Step.LOST
            stored = result.last
            if result.outcome is ClaimOutcome.ALREADY_CLAIMED:
                logger.info(
                    "entry=%s slot=%s not sent: %s", entry.name, format_slot(slot), result.reason
                )
                if stored is not None and entry.name in self._positions:
                    self._settle(entry, Position(stored.slot, stored.slot, stored.runs))
                return _Step.TAKEN
            self.metrics.claimed(entry.name)
            runs = stored.runs if stored is not None else self._positions[entry.name].runs + 1
            booked = self._book(entry, slot)
            if entry.name in self._positions:
                self._settle(booked, Position(slot, slot, runs))
            token = stored.token if stored is not None else self._tenure
            published = self._publish(booked, slot, token)
            if published is _Published.SENT:
                self.lease.settle(entry.name, slot)
            elif published is _Published.FAILED:
                self.in_doubt.in_doubt(
                    entry.name,
                    slot,
                    token,
                    self.environment,
                    f"the publish failed: {self._publish_error!r}",
                )
            elif self.lease.token not in (None, token):
                # An earlier tenure's claim of ours, resolved under a newer tenure: that
                # tenure's fence judges it with the other unacknowledged claims.
                self.lease.settle(entry.name, slot)
            else:
                self._abandoned[(entry.name, slot)] = token
            return _Step.SENT

    def _ask_unanswered(self) -> None:
        """Ask again about claims whose answer was lost, before anything else of their entry:
        ``Lease.claim`` reuses the claim id, so a stored claim of ours comes back CLAIMED (and is
        published) and one that was not stored is made now or refused."""
        for name, slot in list(self._unanswered.items()):
            entry = self.schedule.get(name)
            if entry is None:
                del self._unanswered[name]
                self.in_doubt.in_doubt(
                    name,
                    slot,
                    self._fenced or self.lease.token or 0,
                    self.environment,
                    "its claim went unanswered and the entry left the schedule",
                )
                continue
            self._send(entry, slot)

    def _settle(self, entry: ScheduleEntry, position: Position) -> None:
        self._positions[entry.name] = position
        self._show(entry, position)

    def _book(self, entry: ScheduleEntry, slot: datetime) -> ScheduleEntry:
        """The schedule source's own run bookkeeping, as stock beat does it before sending:
        ``reserve`` (in memory for beat_schedule; django-celery-beat marks the row, and its
        ``sync`` writes ``last_run_at`` and ``total_run_count``). Returns the entry to publish.
        Bookkeeping that fails is logged; the claimed run is still published."""
        try:
            booked = self.reserve(entry)
        except Exception:
            logger.exception(
                "entry=%s slot=%s: the scheduler's run bookkeeping (reserve) failed; sending "
                "the run anyway",
                entry.name,
                format_slot(slot),
            )
            return entry
        return booked if isinstance(booked, ScheduleEntry) else entry

    def _publish(
        self,
        entry: ScheduleEntry,
        slot: datetime,
        token: int | None,
        *,
        resend: Resend | None = None,
    ) -> _Published:
        """Publish one claimed run through Celery's own ``apply_entry``, the seam that
        integrations such as Sentry Crons hook, with the run's headers added to the entry's
        options for the call only (no new entry is built, so any Entry class works). Only while
        the claiming tenure's safe time lasts (``Lease.may_publish``): a leader that was paused
        or cut off between the claim and here leaves the slot to whoever leads now
        (ABANDONED)."""
        if token is None or not self.lease.may_publish(token):
            logger.error(
                "entry=%s slot=%s claimed by token %s but not published: the lease ran out "
                "before the publish (paused or cut off); the slot is in doubt for the next "
                "tenure",
                entry.name,
                format_slot(slot),
                token,
            )
            return _Published.ABANDONED
        options = entry.options
        headers = {
            **options.get("headers", {}),
            **run_headers(entry.name, slot, token=token, environment=self.environment),
        }
        if resend is not None:
            headers[RESENT_FROM] = resend.token
        logger.info(
            "Sending due task entry=%s task=%s slot=%s token=%s%s",
            entry.name,
            entry.task,
            format_slot(slot),
            token,
            "" if resend is None else f" (again: in doubt, claimed by token {resend.token})",
        )
        entry.options = {**options, "headers": headers}
        self._publishing = (entry.name, slot)
        self._publish_error = None
        try:
            self.apply_entry(entry, producer=self.producer)
        except Exception as exc:
            self._unpublished(exc)
        finally:
            entry.options = options
            self._publishing = None
        return _Published.SENT if self._publish_error is None else _Published.FAILED

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        """Celery's publish, called by ``apply_entry``. A failure is logged here as a run
        claimed but not published (Celery's ``apply_entry`` would log it without the slot)."""
        try:
            result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        except Exception as exc:
            self._unpublished(exc)
            return None
        if self._publishing is not None:
            self.metrics.sent(*self._publishing)
        return result

    def _unpublished(self, exc: BaseException) -> None:
        # Whatever failed, the claim stands: the slot is in doubt (the caller decides).
        name, slot = self._publishing or ("?", None)
        self._publish_error = exc
        self.metrics.publish_failed(name)
        logger.warning(
            "entry=%s slot=%s was claimed but its publish failed: %r",
            name,
            format_slot(slot) if slot is not None else "?",
            exc,
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
                f"safe {timings.safe_seconds:g}s, poll {timings.poll_seconds:g}s), "
                f"leads only with its clock within {timings.max_clock_skew_seconds:g}s of the "
                "store's",
                f"    . catch-up -> {self._catch_up_text()}",
                f"    . metrics -> {self.metrics.describe()}",
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
        except (StoreMissing, CorruptRecord) as exc:
            # The ping may have timed out on a cold store, so the table is first found missing
            # here; it is the same start-up mistake and ends beat the same way.
            raise BeatStartupError(exc) from None
        finally:
            store.close()
        if record is not None and record.pin not in (None, self.environment):
            return f"standby: the lock is pinned to {record.pin}"
        if record is None or record.holder is None:
            return "leader as soon as it starts (the lease is free)"
        return f"standby until it holds the lease (held by {record.holder}, token {record.token})"
