"""Every history the operator reads, in one shape: the lock's (handovers, pins, roll-backs,
fall-backs) and each route's (create, set, abort). Newest first, one row per event under a
header, the time as :func:`~beat_handover.handover.instants.history_time` writes it and who as
``user@host``; or JSON for tools."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from beat_handover.beat_lock.record import AuditEvent
from beat_handover.handover.instants import history_time
from beat_handover.routers.route_format import RouteChange, format_percent

LOCK_HEADER = ("WHEN (UTC)", "EVENT", "RESULT", "BY", "DETAIL")
ROUTE_HEADER = ("WHEN (UTC)", "ACTION", "PERCENT", "VERSION", "BY", "REASON")


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "host": event.host,
        "result": event.result,
        "detail": dict(event.detail),
    }


def lock_history_lines(events: Sequence[AuditEvent]) -> list[str]:
    """``2026-03-01 10:15:02Z  handover  done  alice@ops-1  from=paas, to=ecs, ...``."""
    rows = [
        (
            history_time(event.at),
            event.kind,
            event.result,
            f"{event.actor}@{event.host}",
            ", ".join(f"{key}={value}" for key, value in event.detail.items() if value is not None),
        )
        for event in events
    ]
    return aligned([LOCK_HEADER, *rows])


def change_json(change: RouteChange) -> dict[str, Any]:
    return {
        "at": change.at,
        "action": change.action,
        "actor": change.actor,
        "host": change.host,
        "old_percent": None if change.old_percent is None else format_percent(change.old_percent),
        "new_percent": format_percent(change.new_percent),
        "version": change.version,
        "reason": change.reason,
    }


def route_history_lines(changes: Sequence[RouteChange]) -> list[str]:
    """``2026-03-01 10:15:02Z  set  0% -> 0.1%  2  alice@ops-1  first visitors``."""
    rows = []
    for change in changes:
        old = "" if change.old_percent is None else f"{format_percent(change.old_percent)}% -> "
        rows.append(
            (
                history_time(datetime.fromisoformat(change.at)),
                change.action,
                f"{old}{format_percent(change.new_percent)}%",
                str(change.version),
                f"{change.actor}@{change.host}",
                change.reason,
            )
        )
    return aligned([ROUTE_HEADER, *rows])


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines, each column padded to its widest cell, two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
