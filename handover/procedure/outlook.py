"""When the app's critical entries fire next, as the handover's guard needs it.

A thin adapter over the quiet-window computation (:mod:`beat_handover.scheduler.quiet`, through the
app reader of :mod:`beat_handover.handover.app_schedule`), so the guard refuses exactly the runs
beat would send: same schedules, same time zone, same fire-time rules, and the last claimed slots in
the store as the phase of interval entries; and by the report's own rule
(:func:`beat_handover.scheduler.quiet.quiet_at`): now is quiet only if the report would put a
window long enough for the handover starting now, so a run that fired less than the guard ago
blocks as one about to fire does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from beat_handover.beat_lock.record import EntryClaim, LeaseRecord
from beat_handover.handover.app_schedule import AppSchedule, load_app_schedule
from beat_handover.handover.connection import Connection
from beat_handover.handover.procedure.model import CriticalOutlook, Outlook
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.quiet import select_critical


def outlook_for(connection: Connection, *, guard_seconds: float, window_seconds: float) -> Outlook:
    """A function from the lease record to the outlook of the connection's app. A quiet window
    must last ``window_seconds`` (the time a handover may take) to be offered."""
    settings = connection.settings()
    if not settings.critical:
        return lambda _record: CriticalOutlook(entries=())
    if connection.load_app() is None:
        unknown = (
            f"beat_lock_critical names {', '.join(settings.critical)} but no Celery app was "
            "given, so their schedule is unknown; give -A APP"
        )
        return lambda _record: CriticalOutlook(entries=tuple(settings.critical), unknown=unknown)
    schedule = load_app_schedule(connection)
    entries = select_critical(schedule.schedules, schedule.critical)

    def outlook(record: LeaseRecord | None) -> CriticalOutlook:
        claims = connection.store().last_claims(settings.name) if record is not None else {}
        return critical_outlook(
            schedule,
            entries,
            claims,
            datetime.now(UTC),
            guard=timedelta(seconds=guard_seconds),
            window=timedelta(seconds=window_seconds),
        )

    return outlook


def critical_outlook(
    schedule: AppSchedule,
    entries: tuple[str, ...],
    claims: Mapping[str, EntryClaim],
    now: datetime,
    *,
    guard: timedelta,
    window: timedelta,
) -> CriticalOutlook:
    """The outlook at ``now``, anchoring interval entries on their last ``claims``."""
    anchored = replace(
        schedule,
        anchors={entry: claim.slot for entry, claim in claims.items()},
        anchors_unknown=None,
    )
    try:
        run = anchored.next_critical_run(now)
        around = anchored.quiet_at(now, guard=guard, min_length=window)
    except (PhaseUnknown, UnsupportedSchedule) as exc:
        return CriticalOutlook(entries, unknown=str(exc))
    return CriticalOutlook(
        entries,
        next_entry=None if run is None else run.entry,
        next_at=None if run is None else run.at,
        quiet_from=None if around.window is None else around.window.start,
        blocking=around.blocking,
        no_window=around.no_window_reason or None,
        crowded=around.crowded,
    )
