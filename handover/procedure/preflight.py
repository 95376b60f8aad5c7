"""Preflight of a handover: look before acting, print each check with its result.

The checks, in order: the store answers; who holds the lease now; whether the target already
leads (then there is nothing to do); at least one live participant of the target environment
whose wall clock is within the allowed skew of the store's (a skewed one will not lead); no
critical entry fired or fires within the guard of a handover starting now (the quiet-window
report's rule). Every check after the store's runs even when an earlier one refused, so the
operator sees all the problems at once. Preflight only reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from beat_handover.beat_lock.errors import StoreMissing, StoreUnavailable
from beat_handover.beat_lock.record import LeaseRecord, Participant
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.instants import age_seconds, clock_time
from beat_handover.handover.lock_status import describe_announcement, describe_participant
from beat_handover.handover.procedure.model import (
    Check,
    CheckStatus,
    CriticalOutlook,
    Outlook,
    Progress,
    Verdict,
)
from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.quiet import DEFAULT_HORIZON, CriticalRun

OK, REFUSED, FAILED, FORCED, STOP = (
    CheckStatus.OK,
    CheckStatus.REFUSED,
    CheckStatus.FAILED,
    CheckStatus.FORCED,
    CheckStatus.STOP,
)


@dataclass
class Preflight:
    """What preflight saw and concluded."""

    target: str
    checks: list[Check] = field(default_factory=list)
    record: LeaseRecord | None = None
    participants: list[Participant] = field(default_factory=list)
    outlook: CriticalOutlook | None = None
    verdict: Verdict = Verdict.GO

    def add(self, progress: Progress, check: Check) -> None:
        self.checks.append(check)
        progress.check(check)


def run_preflight(
    store: LeaseStore,
    name: str,
    target: str,
    *,
    guard_seconds: float,
    force: bool,
    outlook: Outlook,
    progress: Progress,
) -> Preflight:
    """Run every check against ``store`` for a handover of lock ``name`` to ``target``."""
    result = Preflight(target)
    started = time.monotonic()
    try:
        store.ping()
    except StoreMissing as exc:
        result.add(progress, Check("store reachable", FAILED, str(exc)))
        result.verdict = Verdict.STORE_MISSING
        return result
    except StoreUnavailable as exc:
        result.add(progress, Check("store reachable", FAILED, f"{exc}; nothing was changed"))
        result.verdict = Verdict.REFUSED
        return result
    answered = format_duration(time.monotonic() - started)
    result.add(
        progress,
        Check("store reachable", OK, f"{store.location.describe()} answered in {answered}"),
    )

    result.record = store.read(name)
    result.add(progress, Check("current leader", OK, describe_leader(result.record, name)))
    if _already_leads(result.record, target):
        result.add(
            progress,
            Check(
                f"{target} not leading yet",
                STOP,
                f"{target} already leads and the lease is pinned to {target}: nothing to do",
            ),
        )
        result.verdict = Verdict.NOTHING_TO_DO
        return result
    result.add(
        progress, Check(f"{target} not leading yet", OK, _not_leading(result.record, target))
    )

    result.participants = store.participants(name)
    result.add(progress, _participants_check(result.participants, result.record, target))

    if guard_seconds == 0:
        result.add(progress, Check("critical entries", OK, "not checked: the guard is 0"))
    else:
        result.outlook = outlook(result.record)
        result.add(progress, _critical_check(result.outlook, guard_seconds, force))

    if any(check.status == REFUSED for check in result.checks):
        result.verdict = Verdict.REFUSED
    return result


def describe_leader(record: LeaseRecord | None, name: str) -> str:
    if record is None:
        return f"nobody has ever held lock {name!r} (no lease record yet)"
    pin = record.pin or "none (any environment)"
    announcement = describe_announcement(record, "; ")
    if record.holder is None:
        return f"nobody holds the lease (token {record.token}, pin {pin}){announcement}"
    renewed = "never renewed"
    if record.renewed_at is not None:
        renewed = (
            f"last renewed {clock_time(record.renewed_at)} "
            f"({format_duration(age_seconds(record.renewed_at))} ago by this host's clock)"
        )
    return (
        f"{record.holder.environment} (instance {record.holder.instance_id}, token "
        f"{record.token}), {renewed}, pin {pin}{announcement}"
    )


def _already_leads(record: LeaseRecord | None, target: str) -> bool:
    return (
        record is not None
        and record.holder is not None
        and record.holder.environment == target
        and record.pin == target
    )


def _not_leading(record: LeaseRecord | None, target: str) -> str:
    if record is not None and record.holder is not None and record.holder.environment == target:
        return f"{target} holds the lease but it is not pinned there; the pin will be set"
    return f"{target} does not hold the lease"


def _participants_check(
    participants: list[Participant], record: LeaseRecord | None, target: str
) -> Check:
    name = f"live {target} participants"
    ours = [p for p in participants if p.identity.environment == target]
    if not ours:
        others = sorted({p.identity.environment for p in participants})
        seen = ", ".join(others) if others else "none at all"
        return Check(
            name,
            REFUSED,
            f"no {target} beat has a live heartbeat (environments seen: {seen}); start beat "
            f"in {target} with beat_lock_environment={target} and the same lock, then retry",
        )
    listed = "; ".join(describe_participant(p, record) for p in ours)
    if all(p.clock_skewed for p in ours):
        return Check(
            name,
            REFUSED,
            f"every live {target} beat's wall clock is skewed beyond "
            f"beat_lock_max_clock_skew_seconds, so none of them would lead ({listed}); fix "
            f"their clock (NTP) and retry",
        )
    return Check(name, OK, f"{len(ours)}: {listed}")


def _critical_check(outlook: CriticalOutlook, guard_seconds: float, force: bool) -> Check:
    name = "critical entries"
    guard = format_duration(guard_seconds)
    blocked = REFUSED if not force else FORCED
    wait = "" if force else "; wait for it, or use --force"
    if outlook.unknown is not None:
        return Check(name, blocked, f"cannot tell when they fire: {outlook.unknown}{wait}")
    if not outlook.entries:
        return Check(name, OK, "none configured (beat_lock_critical is empty)")
    now = datetime.now(UTC)
    if not outlook.blocking:
        if outlook.next_at is None:
            return Check(name, OK, f"none of {', '.join(outlook.entries)} is due to fire again")
        in_seconds = (outlook.next_at - now).total_seconds()
        return Check(
            name,
            OK,
            f"none fired or fires within the {guard} guard (next: {outlook.next_entry} at "
            f"{clock_time(outlook.next_at)}, in {format_duration(max(in_seconds, 0.0))})",
        )
    runs, verb = _blocking(outlook.blocking, now)
    if outlook.quiet_from is not None:
        then = f"the next quiet window starts at {clock_time(outlook.quiet_from)}{wait}"
    elif outlook.crowded:
        # Waiting cannot help: an entry on its own leaves no window, now or later.
        advice = "" if force else "; shorten --guard, or use --force"
        then = f"no quiet window can come: {outlook.no_window}{advice}"
    else:
        advice = "" if force else "; use --force"
        days = DEFAULT_HORIZON.days
        then = f"no quiet window in the next {days} days: {outlook.no_window}{advice}"
    return Check(
        name, blocked, f"{runs} {verb} within the {guard} guard of a handover starting now; {then}"
    )


def _blocking(runs: tuple[CriticalRun, ...], now: datetime) -> tuple[str, str]:
    """The runs that block now, as the last one before and the first one after it (an
    every-second entry blocks hundreds), and the verb that agrees with them."""
    before = [run for run in runs if run.at < now][-1:]
    after = [run for run in runs if run.at >= now][:1]
    shown = [_critical_run(run.entry, run.at, now) for run in (*before, *after)]
    more = len(runs) - len(shown)
    text = " and ".join(shown) + (f" (and {more} more critical runs)" if more else "")
    return text, "is" if len(runs) == 1 else "are"


def _critical_run(entry: str | None, at: datetime, now: datetime) -> str:
    """``letters at 10:15 (in 3m)``, or ``letters ran at 10:15 (2m ago)``."""
    seconds = (at - now).total_seconds()
    if seconds < 0:
        return f"{entry} ran at {clock_time(at)} ({format_duration(-seconds)} ago)"
    return f"{entry} at {clock_time(at)} (in {format_duration(seconds)})"
