"""Slots in doubt as the operator sees them: listed by ``handover status``, acknowledged (after
checking by hand whether the run happened) by ``handover ack-in-doubt``, which writes each
acknowledgement to the lock's history with the operator's name."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.record import AuditEvent, Doubt
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.history import aligned
from beat_handover.handover.instants import history_time
from beat_handover.handover.procedure.audit import operator
from beat_handover.scheduler.headers import format_slot
from beat_handover.scheduler.in_doubt import AUDIT_KIND

HEADER = ("ENTRY", "SLOT (UTC)", "TOKEN", "ENV", "NOTICED (UTC)", "WHY")


def doubt_json(doubt: Doubt) -> dict[str, Any]:
    return {
        "entry": doubt.entry,
        "slot": format_slot(doubt.slot),
        "token": doubt.token,
        "environment": doubt.environment,
        "reason": doubt.reason,
        "noticed_at": doubt.noticed_at.isoformat(),
        "noticed_by": doubt.noticed_by,
    }


def doubt_lines(doubts: Sequence[Doubt]) -> list[str]:
    """A table of the slots in doubt, one row each."""
    rows = [
        (
            d.entry,
            format_slot(d.slot),
            str(d.token),
            d.environment,
            history_time(d.noticed_at),
            d.reason,
        )
        for d in doubts
    ]
    return aligned([HEADER, *rows])


def parse_slot(text: str) -> datetime:
    """A slot as beat logs it (ISO 8601 with a UTC offset); ConfigError saying so otherwise."""
    try:
        slot = datetime.fromisoformat(text)
    except ValueError:
        slot = None
    if slot is None or slot.utcoffset() is None:
        raise ConfigError(
            f"slot {text!r} is not an ISO 8601 time with a UTC offset; copy it as `handover "
            "status` or beat's log shows it, e.g. 2026-03-29T01:00:00+00:00"
        )
    return slot.astimezone(UTC)


def acknowledge(
    store: LeaseStore, name: str, chosen: Sequence[tuple[str, datetime]] | None
) -> list[Doubt]:
    """Clear the chosen slots in doubt (None: all of them) and write each to the history;
    ConfigError naming the known ones if one chosen is not in doubt. Returns those cleared."""
    doubts = store.doubts(name)
    if chosen is None:
        targets = doubts
    else:
        by_key = {(d.entry, d.slot): d for d in doubts}
        missing = [key for key in chosen if key not in by_key]
        if missing:
            entry, slot = missing[0]
            known = ", ".join(f"{d.entry} {format_slot(d.slot)}" for d in doubts) or "none"
            raise ConfigError(
                f"entry {entry!r} slot {format_slot(slot)} is not in doubt for lock {name!r} "
                f"(in doubt: {known})"
            )
        targets = [by_key[key] for key in chosen]
    who = operator()
    cleared = []
    for doubt in targets:
        if not store.clear_doubt(name, doubt.entry, doubt.slot):
            continue  # someone else acknowledged it meanwhile
        cleared.append(doubt)
        store.record_event(
            name,
            AuditEvent(
                at=datetime.now(UTC),
                kind=AUDIT_KIND,
                actor=who.user,
                host=who.host or socket.gethostname(),
                result="acknowledged",
                detail={
                    "entry": doubt.entry,
                    "slot": format_slot(doubt.slot),
                    "token": doubt.token,
                    "reason": doubt.reason,
                },
            ),
        )
    return cleared
