"""A handover from start to end: preflight, announce, act, confirm, report, and roll back if the
target does not take over in time. Every pin and its outcome is written to the audit trail."""

from __future__ import annotations

import logging
import time

from beat_handover.beat_lock.errors import StoreError, StoreUnavailable
from beat_handover.beat_lock.lease import ANNOUNCED_POLL_SECONDS
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.procedure import audit
from beat_handover.handover.procedure.model import (
    CheckStatus,
    HandoverReport,
    HandoverRequest,
    Outcome,
    Outlook,
    Progress,
    RollbackReport,
    Tenure,
    Verdict,
)
from beat_handover.handover.procedure.preflight import Preflight, run_preflight
from beat_handover.handover.procedure.store_steps import (
    Pinned,
    Rollback,
    Wait,
    WaitEnd,
    announce_wait_seconds,
    pin,
    roll_back,
    wait_for_leader,
    withdraw,
)
from beat_handover.scheduler.durations import format_duration

log = logging.getLogger(__name__)

STOPPING = (CheckStatus.REFUSED, CheckStatus.FAILED)


def hand_over(
    store: LeaseStore,
    name: str,
    request: HandoverRequest,
    *,
    outlook: Outlook,
    progress: Progress,
) -> HandoverReport:
    """Move the lease of lock ``name`` to ``request.target``; the report says what happened."""
    target = request.target
    report = HandoverReport(
        lock=name, store=store.location.describe(), target=target, forced=request.force
    )
    mode = " (dry run: nothing will be changed)" if request.dry_run else ""
    progress.line(f"Handover of lock {name!r} to {target} on {report.store}{mode}")
    progress.line("Preflight:")
    preflight = run_preflight(
        store,
        name,
        target,
        guard_seconds=request.guard_seconds,
        force=request.force,
        outlook=outlook,
        progress=progress,
    )
    report.checks = preflight.checks
    record = preflight.record
    if record is not None and record.holder is not None:
        report.previous = Tenure(record.holder, record.token)
    if preflight.verdict is not Verdict.GO:
        return _stopped(report, preflight)
    announces = _worth_announcing(record, target)
    if request.dry_run:
        report.outcome = Outcome.DRY_RUN
        announced = (
            f"the handover would be announced to the {target} standbys and, "
            f"{format_duration(announce_wait_seconds(request.poll_seconds))} later, "
            if announces
            else ""
        )
        ending = (
            f"where {report.previous} holds it already (no tenure would end)"
            if not announces and report.previous is not None
            else f"ending the tenure of {report.previous or 'nobody'}"
        )
        report.message = (
            f"Dry run: preflight passed; nothing was changed. Without --dry-run {announced}the "
            f"lease would be pinned to {target}, {ending}."
        )
        return report
    if announces and not _announce(store, name, record, request, report, progress):
        return report

    expected_token = None if record is None else record.token
    try:
        pinned = pin(
            store,
            name,
            target,
            expected_token=expected_token,
            budget_seconds=request.timeout_seconds,
        )
    except StoreUnavailable as exc:
        if announces:
            withdraw(store, name, progress)
        _needs_a_person(
            report,
            f"The store stopped answering while pinning to {target} ({exc}); the pin may or may "
            "not have been written. Run `handover status` to see who leads, then decide.",
        )
        _record_end(store, name, report, progress)
        return report
    if pinned is None:
        if announces:
            withdraw(store, name, progress)
        _changed_after_preflight(
            report, expected_token, "it was not pinned" if announces else "nothing was written"
        )
        return report
    report.pin_token = pinned.record.token
    kept = _kept_tenure(pinned, target)
    log.info("handover pinned lock=%s to=%s token=%s", name, target, pinned.record.token)
    audit.record(
        store,
        name,
        "pin",
        "written",
        {
            "to": target,
            "from": report.previous.holder.environment if report.previous else None,
            "token": pinned.record.token,
            "forced": request.force,
        },
        progress,
    )
    if kept is not None:
        _pinned_in_place(report, kept, outlook, pinned.record)
        progress.line(f"Pinned to {target} in one conditional write; {kept} keeps the lease.")
        _record_end(store, name, report, progress)
        return report
    progress.line(
        f"Pinned to {target} in one conditional write: the tenure of "
        f"{report.previous or 'nobody'} ended, token now {pinned.record.token}."
    )
    progress.line("Confirm:")
    try:
        wait = wait_for_leader(
            store,
            name,
            target,
            min_token=pinned.first_new_token,
            started_at=pinned.started_at,
            timeout_seconds=request.timeout_seconds,
            progress=progress,
            label=f"waiting for {target} to take over",
        )
    except KeyboardInterrupt:
        progress.end_wait()
        progress.line(f"Interrupted while waiting for {target}: rolling back.")
        wait = None
    except StoreError as exc:
        progress.end_wait()
        _needs_a_person(
            report,
            f"The lease could not be read after the pin to {target} ({exc}); the pin was "
            "written, so nobody outside it may lead. Run `handover status`, then decide.",
        )
        _record_end(store, name, report, progress)
        return report
    progress.end_wait()

    if wait is not None and wait.end is WaitEnd.TAKEN:
        _done(report, wait, outlook)
    elif wait is not None and wait.end is WaitEnd.PIN_CHANGED:
        seen = wait.last_seen
        _needs_a_person(
            report,
            f"Someone else pinned the lock to {seen.pin if seen else '?'} while this handover "
            "waited; not rolling back over their change. Run `handover status` and "
            "`handover history`.",
        )
    else:
        _roll_back(store, name, report, preflight, request, wait, progress)
    _record_end(store, name, report, progress)
    return report


def _needs_a_person(report: HandoverReport, message: str) -> None:
    report.outcome = Outcome.NEEDS_A_PERSON
    report.message = message


def _kept_tenure(pinned: Pinned, target: str) -> Tenure | None:
    """The tenure the pin left in place: the target held the lease already, so the pin ended
    nobody's tenure and there is no takeover to wait for."""
    holder = pinned.record.holder
    if holder is None or holder.environment != target:
        return None
    return Tenure(holder, pinned.record.token)


def _pinned_in_place(
    report: HandoverReport, kept: Tenure, outlook: Outlook, record: LeaseRecord
) -> None:
    report.outcome = Outcome.PINNED
    report.new = kept
    report.message = (
        f"Pinned: {report.target} already led and keeps the lease; it is now pinned to "
        f"{report.target}, so no other environment may take it. No tenure ended."
    )
    after = outlook(record)
    report.next_critical_entry = after.next_entry
    report.next_critical_at = after.next_at


def _worth_announcing(record: LeaseRecord | None, target: str) -> bool:
    """Whether a standby of ``target`` will acquire after the pin, which the announcement
    hastens: not if the target holds the lease already (the pin ends no tenure), nor on a lock
    never held (there is no record to announce on)."""
    return record is not None and (record.holder is None or record.holder.environment != target)


def _announce(
    store: LeaseStore,
    name: str,
    record: LeaseRecord,
    request: HandoverRequest,
    report: HandoverReport,
    progress: Progress,
) -> bool:
    """Announce the handover on the lease, conditional on the token preflight saw, and wait
    until every standby of the target has seen it; False (and the report says why) if the
    announcement could not be made. Ctrl-C while waiting withdraws it."""
    target = request.target
    started = time.monotonic()
    try:
        announced = store.announce(name, target, expected_token=record.token)
    except StoreUnavailable as exc:
        withdraw(store, name, progress)
        report.outcome = Outcome.REFUSED
        report.message = (
            f"The store did not answer the announcement ({exc}): the lease was not pinned. "
            "Run the command again."
        )
        return False
    if announced is None:
        _changed_after_preflight(report, record.token, "nothing was written")
        return False
    wait = announce_wait_seconds(request.poll_seconds)
    progress.line(
        f"Announced the handover to {target} on the lease (token {record.token}; holder and pin "
        f"unchanged). Waiting {format_duration(wait)} (one standby poll of "
        f"{format_duration(request.poll_seconds)} and a margin), until every {target} standby "
        f"reads the lease every {format_duration(ANNOUNCED_POLL_SECONDS)}."
    )
    try:
        time.sleep(wait)
    except KeyboardInterrupt:
        progress.line("Interrupted before the pin: withdrawing the announcement.")
        withdraw(store, name, progress)
        raise
    report.announced_seconds = time.monotonic() - started
    return True


def _changed_after_preflight(report: HandoverReport, token: int | None, what: str) -> None:
    report.outcome = Outcome.REFUSED
    report.message = (
        f"The lease changed after preflight (token {token} is no longer current): {what}. Run "
        "the command again to look afresh."
    )


def _stopped(report: HandoverReport, preflight: Preflight) -> HandoverReport:
    if preflight.verdict is Verdict.NOTHING_TO_DO:
        report.outcome = Outcome.NOTHING_TO_DO
        report.message = f"Nothing to do: {report.target} already leads."
    elif preflight.verdict is Verdict.STORE_MISSING:
        report.outcome = Outcome.CONFIG_ERROR
        report.message = "The lock table does not exist: run `handover init` first."
    else:
        refused = [c.name for c in preflight.checks if c.status in STOPPING]
        report.outcome = Outcome.REFUSED
        report.message = f"Refused by preflight ({', '.join(refused)}): nothing was changed."
    return report


def _done(report: HandoverReport, wait: Wait, outlook: Outlook) -> None:
    takeover = wait.takeover
    assert takeover is not None  # WaitEnd.TAKEN always carries one
    report.outcome = Outcome.DONE
    report.new = takeover.tenure
    report.acquired_after_seconds = takeover.acquired_after_seconds
    report.gap_seconds = takeover.renewed_after_seconds
    report.message = (
        f"Done: {report.target} leads (gap {format_duration(takeover.renewed_after_seconds)})."
    )
    after = outlook(wait.last_seen)
    report.next_critical_entry = after.next_entry
    report.next_critical_at = after.next_at


def _roll_back(
    store: LeaseStore,
    name: str,
    report: HandoverReport,
    preflight: Preflight,
    request: HandoverRequest,
    wait: Wait | None,
    progress: Progress,
) -> None:
    record = preflight.record
    previous = report.previous
    if previous is not None and previous.holder.environment != request.target:
        back_to: str | None = previous.holder.environment
    else:
        back_to = None if record is None else record.pin
    why = (
        "the operator interrupted the wait"
        if wait is None
        else f"{request.target} did not take over within {format_duration(request.timeout_seconds)}"
    )
    progress.line(f"Rolling back: {why}.")
    try:
        result = roll_back(
            store,
            name,
            back_to,
            await_leader=previous is not None and back_to is not None,
            timeout_seconds=request.timeout_seconds,
            progress=progress,
        )
    except KeyboardInterrupt:
        progress.end_wait()
        result = Rollback(False, None, None, "the roll-back itself was interrupted (Ctrl-C)")
    leader = (
        result.wait.takeover.tenure
        if result.wait is not None and result.wait.takeover is not None
        else None
    )
    report.rollback = RollbackReport(
        reason=why,
        to=back_to,
        ok=result.ok,
        token=result.pinned.record.token if result.pinned else None,
        leader=leader,
        error=result.error or None,
    )
    audit.record(
        store,
        name,
        "rollback",
        "done" if result.ok else "failed",
        {"to": back_to, "reason": why, "error": result.error or None},
        progress,
    )
    if result.ok:
        report.outcome = Outcome.ROLLED_BACK
        now = (
            f"{leader} leads again"
            if leader is not None
            else f"the pin is back to {back_to or 'any environment'}"
        )
        report.message = f"Rolled back: {why}; {now}."
    else:
        report.outcome = Outcome.ROLLBACK_FAILED
        report.message = (
            f"ROLL-BACK FAILED: {why}, and {result.error}. A person must look now: run "
            "`handover status`; the lease may have no leader."
        )


def _record_end(store: LeaseStore, name: str, report: HandoverReport, progress: Progress) -> None:
    detail: dict[str, object] = {
        "from": report.previous.holder.environment if report.previous else None,
        "to": report.target,
        "forced": report.forced,
    }
    if report.gap_seconds is not None:
        detail["gap_seconds"] = round(report.gap_seconds, 3)
    if report.new is not None:
        detail["token"] = report.new.token
    log.info("handover ended lock=%s to=%s result=%s", name, report.target, report.outcome.value)
    audit.record(store, name, "handover", report.outcome.value, detail, progress)
