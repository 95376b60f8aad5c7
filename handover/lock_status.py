"""A lock as ``handover status`` shows it: who leads, since when, the pin, who is alive in each
environment, and the recent handovers, as lines for people or one JSON object for tools."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.record import AuditEvent, LeaseRecord, Participant
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.history import event_json, lock_history_lines
from beat_handover.handover.instants import age_seconds, clock_time
from beat_handover.scheduler.durations import format_duration

RECENT_EVENTS = 5


@dataclass(frozen=True)
class Snapshot:
    lock: str
    store: str
    record: LeaseRecord | None
    participants: list[Participant]
    events: list[AuditEvent]
    taken_at: datetime


def take_snapshot(store: LeaseStore, name: str) -> Snapshot:
    return Snapshot(
        lock=name,
        store=store.location.describe(),
        record=store.read(name),
        participants=store.participants(name),
        events=store.events(name, RECENT_EVENTS),
        taken_at=datetime.now(UTC),
    )


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
    skew = participant.clock_skew_seconds
    if not participant.clock_skewed or skew is None:
        return ""
    way = "ahead of" if skew >= 0 else "behind"
    allowed = participant.detail.get("clock_skew_max_seconds")
    beyond = f" (beyond the {allowed:g} s allowed)" if isinstance(allowed, int | float) else ""
    return f", clock {abs(skew):.1f} s {way} the store's{beyond}: will not lead"


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
    }


def snapshot_lines(snapshot: Snapshot) -> list[str]:
    record = snapshot.record
    lines = [f"Lock {snapshot.lock!r} on {snapshot.store}, at {clock_time(snapshot.taken_at)}"]
    if record is None:
        lines.append("  lease:        never acquired (no lease record yet)")
    else:
        if record.holder is None:
            lines.append("  holder:       nobody")
        else:
            lines.append(
                f"  holder:       {record.holder.environment} "
                f"(instance {record.holder.instance_id})"
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
        listed = "; ".join(describe_participant(p, record) for p in members)
        lines.append(f"    {environment}: {len(members)} live: {listed}")
    lines.append("  recent handovers:")
    if not snapshot.events:
        lines.append("    none recorded")
    else:
        lines.extend(f"    {line}" for line in lock_history_lines(snapshot.events))
    return lines


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
    parts.append("ages by this host's clock")
    return ", ".join(parts)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _ago(moment: datetime | None) -> float | None:
    return None if moment is None else round(age_seconds(moment), 3)
