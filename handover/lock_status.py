"""A lock as ``handover status`` shows it: who leads, since when, the pin, who is alive in each
environment, the last runs and the late ones, what needs a person's attention, and the recent
handovers, as lines for people or one JSON object for tools.

What needs attention is a list of sentences (:func:`beat_attention`), so every check that finds
something wrong with a lock adds its own line there, and the command line shows them together.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from beat_handover.beat_lock.record import (
    AuditEvent,
    Doubt,
    EntryClaim,
    LeaseRecord,
    Participant,
)
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.app_schedule import AppSchedule
from beat_handover.handover.connection import Connection
from beat_handover.handover.history import event_json, lock_history_lines
from beat_handover.handover.in_doubt import doubt_json
from beat_handover.handover.instants import age_seconds, clock_time, short_time
from beat_handover.handover.routes import (
    Routes,
    RouteStatus,
    route_status,
    route_status_json,
    route_status_lines,
)
from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.firetimes import next_fire_time
from beat_handover.scheduler.headers import format_slot
from beat_handover.scheduler.in_doubt import AUDIT_KIND

RECENT_EVENTS = 3
EVENTS_READ = 50  # the newest events read to find the latest handovers among in-doubt lines
LAST_RUNS_SHOWN = 3
# A run whose slot passed this long ago without a claim is late: beat sends a due run within a
# tick, a handover's gap is seconds, so a minute is well past either.
LATE_AFTER = timedelta(minutes=1)
WIDTH = 80


@dataclass(frozen=True)
class LateRun:
    """A schedule entry whose next run after its last claimed one is overdue."""

    entry: str
    due: datetime
    last: datetime

    def describe(self, now: datetime) -> str:
        late = format_duration(round((now - self.due).total_seconds()))
        return f"{self.entry} due {short_time(self.due, now)} is {late} late"


@dataclass(frozen=True)
class Snapshot:
    lock: str
    store: str
    record: LeaseRecord | None
    participants: list[Participant]
    events: list[AuditEvent]
    taken_at: datetime
    claims: Mapping[str, EntryClaim] = field(default_factory=dict)
    late: list[LateRun] | None = None  # None: not known (no app given, or no schedule read)
    late_unknown: str = "give -A APP to check for late runs"
    lock_names: list[str] | None = None  # the store's locks, read when this one is missing
    attention: list[str] = field(default_factory=list)
    doubts: list[Doubt] = field(default_factory=list)  # slots in doubt, until acknowledged


def take_snapshot(
    store: LeaseStore, name: str, *, schedule: AppSchedule | None = None, late_unknown: str = ""
) -> Snapshot:
    """The lock as it is now; its late runs too when the app's ``schedule`` is given (else
    ``late_unknown`` says why not)."""
    record = store.read(name)
    now = datetime.now(UTC)
    claims = store.last_claims(name) if record is not None else {}
    snapshot = Snapshot(
        lock=name,
        store=store.location.describe(),
        record=record,
        participants=store.participants(name),
        # Slots in doubt are under attention: their history lines must not push handovers out.
        events=[e for e in store.events(name, EVENTS_READ) if e.kind != AUDIT_KIND][:RECENT_EVENTS],
        taken_at=now,
        claims=claims,
        late=None if schedule is None else late_runs(schedule, claims, now),
        late_unknown=late_unknown or Snapshot.late_unknown,
        lock_names=store.lock_names() if record is None else None,
        doubts=store.doubts(name) if record is not None else [],
    )
    snapshot.attention.extend(beat_attention(snapshot))
    return snapshot


def late_runs(
    schedule: AppSchedule, claims: Mapping[str, EntryClaim], now: datetime
) -> list[LateRun]:
    """Entries of ``schedule`` whose next fire time after their last claimed slot passed more
    than LATE_AFTER ago. Entries never claimed, and schedules that cannot say, are left out."""
    late = []
    for entry, claim in sorted(claims.items()):
        entry_schedule = schedule.schedules.get(entry)
        if entry_schedule is None:
            continue
        try:
            due = next_fire_time(entry_schedule, claim.slot, tz=schedule.tz, anchor=claim.slot)
        except (PhaseUnknown, UnsupportedSchedule):
            continue
        if due is not None and now - due > LATE_AFTER:
            late.append(LateRun(entry, due, claim.slot))
    return late


def beat_attention(snapshot: Snapshot) -> list[str]:
    """What a person should look at in this lock, one sentence each ([] when all is well)."""
    record = snapshot.record
    if record is None:
        return [missing_lock_line(snapshot)]
    lines = []
    if record.holder is None:
        lines.append("nobody leads: no run is sent until a participant takes the lease")
    grouped = by_environment(snapshot.participants)
    if record.pin is not None and record.pin not in grouped:
        lines.append(f"pinned to {record.pin}, but no {record.pin} participant is alive")
    for participant in snapshot.participants:
        clock = clock_text(participant)
        if clock is not None:
            lines.append(
                f"{participant.identity} has its {clock}: it will not lead; fix its time sync (NTP)"
            )
    lines.extend(f"late: {run.describe(snapshot.taken_at)}" for run in snapshot.late or [])
    lines.extend(
        f"in doubt: {d.entry} {format_slot(d.slot)} (token {d.token}): claimed, publish not "
        f"known ({d.reason}); check whether it ran, then `handover ack-in-doubt {d.entry} "
        f"{format_slot(d.slot)}`"
        for d in snapshot.doubts
    )
    return lines


def missing_lock_line(snapshot: Snapshot) -> str:
    """Lock never acquired: which locks the store holds instead."""
    names = snapshot.lock_names or []
    held = (
        f"it holds {len(names)} lock{'' if len(names) == 1 else 's'}: {', '.join(names)}; "
        "name one with --lock-name (or -A APP, for its beat_lock_name)"
        if names
        else "it holds no lock yet (no beat has run with this lock URL)"
    )
    return f"lock {snapshot.lock!r} was never acquired in {snapshot.store}; {held}"


def fit(line: str, width: int = WIDTH) -> str:
    """A table row cut to ``width`` columns, ``...`` marking the cut (the JSON has it whole)."""
    return line if len(line) <= width else line[: width - 3] + "..."


def wrapped(line: str, indent: int, width: int = WIDTH) -> list[str]:
    """A sentence folded to ``width`` columns, continued ``indent`` columns in."""
    return textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False)


def by_environment(participants: list[Participant]) -> dict[str, list[Participant]]:
    grouped: dict[str, list[Participant]] = {}
    for participant in participants:
        grouped.setdefault(participant.identity.environment, []).append(participant)
    return dict(sorted(grouped.items()))


def role_of(participant: Participant, record: LeaseRecord | None) -> str:
    """Leader or standby as the lease record says; a heartbeat's own role lags a change of
    holder by up to one heartbeat, the record does not."""
    holder = record.holder if record is not None else None
    return "leader" if participant.identity == holder else "standby"


def describe_participant(participant: Participant, record: LeaseRecord | None) -> str:
    """``host:123:ab12 (leader, seen 0.40 s ago)``, and the clock of a skewed one."""
    return (
        f"{participant.identity.instance_id} ({role_of(participant, record)}, seen "
        f"{format_duration(age_seconds(participant.seen_at))} ago{describe_clock(participant)})"
    )


def describe_clock(participant: Participant) -> str:
    """``, clock 3600.2 s ahead of the store's (beyond the 5 s allowed): will not lead`` for
    a participant whose clock is skewed, else ""."""
    text = clock_text(participant)
    return "" if text is None else f", {text}: will not lead"


def clock_text(participant: Participant) -> str | None:
    """``clock 3600.2 s ahead of the store's (beyond the 5 s allowed)`` for a participant whose
    clock is skewed, else None."""
    skew = participant.clock_skew_seconds
    if not participant.clock_skewed or skew is None:
        return None
    way = "ahead of" if skew >= 0 else "behind"
    allowed = participant.detail.get("clock_skew_max_seconds")
    beyond = f" (beyond the {allowed:g} s allowed)" if isinstance(allowed, int | float) else ""
    return f"clock {abs(skew):.1f} s {way} the store's{beyond}"


def describe_announcement(record: LeaseRecord, lead: str) -> str:
    """``lead`` and a sentence on a handover announced but not pinned yet, or "" if none."""
    if record.handover_to is None:
        return ""
    when = ""
    if record.handover_announced_at is not None:
        when = f" {format_duration(age_seconds(record.handover_announced_at))} ago"
    return (
        f"{lead}handover to {record.handover_to} announced{when}, not pinned yet (a handover "
        "under way, or one interrupted: the next pin clears it)"
    )


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    record = snapshot.record
    lease: dict[str, Any] | None = None
    if record is not None:
        lease = {
            "holder": None
            if record.holder is None
            else {
                "environment": record.holder.environment,
                "instance": record.holder.instance_id,
            },
            "token": record.token,
            "pin": record.pin,
            "renewed_at": _iso(record.renewed_at),
            "renewed_seconds_ago": _ago(record.renewed_at),
            "tenure_started_at": _iso(record.tenure_started_at),
            "tenure_seconds": _ago(record.tenure_started_at),
            "renewals": record.renewals,
            "handover_to": record.handover_to,
            "handover_announced_at": _iso(record.handover_announced_at),
        }
    return {
        "lock": snapshot.lock,
        "store": snapshot.store,
        "at": snapshot.taken_at.isoformat(),
        "lease": lease,
        "participants": {
            environment: [
                {
                    "instance": p.identity.instance_id,
                    "role": role_of(p, record),
                    "seen_at": p.seen_at.isoformat(),
                    "seen_seconds_ago": _ago(p.seen_at),
                    "clock_skew_seconds": p.clock_skew_seconds,
                    "clock_skewed": p.clock_skewed,
                }
                for p in members
            ]
            for environment, members in by_environment(snapshot.participants).items()
        },
        "recent_events": [event_json(event) for event in snapshot.events],
        "last_runs": [
            {
                "entry": claim.entry,
                "slot": claim.slot.isoformat(),
                "environment": claim.environment,
                "token": claim.token,
                "runs": claim.runs,
            }
            for claim in newest_claims(snapshot.claims)
        ],
        "late_runs": None
        if snapshot.late is None
        else [
            {"entry": run.entry, "due": run.due.isoformat(), "last": run.last.isoformat()}
            for run in snapshot.late
        ],
        "lock_names": snapshot.lock_names,
        "attention": list(snapshot.attention),
        "in_doubt": [doubt_json(doubt) for doubt in snapshot.doubts],
    }


def newest_claims(claims: Mapping[str, EntryClaim]) -> list[EntryClaim]:
    return sorted(claims.values(), key=lambda claim: (claim.slot, claim.entry), reverse=True)


def snapshot_lines(snapshot: Snapshot) -> list[str]:
    """The lock in about 15 lines of at most 80 columns."""
    record = snapshot.record
    lines = [
        f"Lock {snapshot.lock!r} on {snapshot.store}",
        f"  read at:      {clock_time(snapshot.taken_at)} (ages below by this host's clock)",
    ]
    if record is None:
        return fold([*lines, f"  ! {missing_lock_line(snapshot)}"])
    if record.holder is None:
        lines.append("  holder:       nobody")
    else:
        lines.append(
            f"  holder:       {record.holder.environment} (instance {record.holder.instance_id})"
        )
    lines.append(f"  token:        {record.token}")
    lines.append(f"  lease:        {_lease_age(record)}")
    lines.append(f"  pin:          {record.pin or 'none (any environment may lead)'}")
    if record.handover_to is not None:
        lines.append(describe_announcement(record, "  pending:      "))
    lines.append("  participants:")
    grouped = by_environment(snapshot.participants)
    if not grouped:
        lines.append("    none alive")
    for environment, members in grouped.items():
        lines.append(f"    {environment}: {len(members)} live: {_members(members, record)}")
    lines.append(f"  last runs:    {_last_runs(snapshot)}")
    if snapshot.late is None:
        lines.append(f"  late runs:    unknown: {snapshot.late_unknown}")
    else:
        lines.append(f"  late runs:    {len(snapshot.late) or 'none'}")
    lines.append("  attention:    none" if not snapshot.attention else "  attention:")
    lines.extend(f"    ! {line}" for line in snapshot.attention)
    lines.append("  recent handovers:")
    lines = fold(lines)
    if not snapshot.events:
        return [*lines, "    none recorded"]
    return [*lines, *(fit(f"    {line}") for line in lock_history_lines(snapshot.events))]


def fold(lines: list[str], width: int = WIDTH) -> list[str]:
    """Each line folded to ``width`` columns: a ``  label:  value`` line continues under its
    value, any other under its first word, four columns in."""
    folded = []
    for line in lines:
        label = re.match(r"^ *(\w[\w ]*:\s+|! )", line)
        indent = len(label.group(0)) if label else len(line) - len(line.lstrip()) + 4
        folded.extend(wrapped(line, indent, width))
    return folded


def _members(members: list[Participant], record: LeaseRecord | None) -> str:
    """``leader (seen 0.4s ago)`` or ``2 standbys (seen 0.3s, 1.1s ago)``."""
    parts = []
    for role in ("leader", "standby"):
        chosen = [p for p in members if role_of(p, record) == role]
        if chosen:
            seen = ", ".join(format_duration(age_seconds(p.seen_at)) for p in chosen)
            name = role if len(chosen) == 1 else f"{len(chosen)} {role}s"
            parts.append(f"{name} (seen {seen} ago)")
    return ", ".join(parts)


def _last_runs(snapshot: Snapshot) -> str:
    """``letters 10:15:00Z (ecs), invoices 10:00:00Z (ecs) +3 more``."""
    claims = newest_claims(snapshot.claims)
    if not claims:
        return "none claimed"
    shown = ", ".join(
        f"{claim.entry} {short_time(claim.slot, snapshot.taken_at)} ({claim.environment})"
        for claim in claims[:LAST_RUNS_SHOWN]
    )
    more = len(claims) - LAST_RUNS_SHOWN
    return shown + (f" +{more} more" if more > 0 else "")


def _lease_age(record: LeaseRecord) -> str:
    parts = []
    if record.renewed_at is not None:
        parts.append(f"renewed {format_duration(age_seconds(record.renewed_at))} ago")
    if record.holder is not None and record.tenure_started_at is not None:
        parts.append(
            f"held for {format_duration(age_seconds(record.tenure_started_at))} "
            f"({record.renewals} renewal{'' if record.renewals == 1 else 's'})"
        )
    if record.holder is None and record.tenure_ended_at is not None:
        parts.append(f"last tenure ended {clock_time(record.tenure_ended_at)}")
    return ", ".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _ago(moment: datetime | None) -> float | None:
    return None if moment is None else round(age_seconds(moment), 3)


@dataclass(frozen=True)
class Overview:
    """Every entry point in the lock's store at a glance: beat's lock, and each route."""

    beat: Snapshot
    routes: list[RouteStatus] | None  # None where the store holds no routes (Redis)
    routes_note: str = ""


def take_overview(
    connection: Connection, *, schedule: AppSchedule | None = None, late_unknown: str = ""
) -> Overview:
    settings = connection.settings()
    beat = take_snapshot(
        connection.store(), settings.name, schedule=schedule, late_unknown=late_unknown
    )
    location = settings.require_location()
    if location.backend != "dynamodb":
        return Overview(beat, None, "routes live in DynamoDB only; this lock is in Redis")
    routes = Routes(connection)
    found = [route_status(routes, route) for route in routes.all()]
    return Overview(beat, found, f"dynamodb table {routes.table}")


def overview_json(overview: Overview) -> dict[str, Any]:
    return {
        **snapshot_json(overview.beat),
        "routes": None
        if overview.routes is None
        else [route_status_json(status) for status in overview.routes],
    }


def overview_lines(overview: Overview) -> list[str]:
    lines = snapshot_lines(overview.beat)
    if overview.routes is None:
        return [*lines, f"Routes: none ({overview.routes_note})"]
    if not overview.routes:
        return [*lines, f"Routes: none in {overview.routes_note}"]
    lines.append(f"Routes ({len(overview.routes)}) in {overview.routes_note}:")
    for status in overview.routes:
        lines.extend(route_status_lines(status, overview.beat.taken_at))
    return lines
