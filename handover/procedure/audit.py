"""The lock's audit trail as the operator writes and reads it: who did what, from where, when.

An audit write is a record for people, not part of the safety argument, so a failed write is
reported as a warning and never undoes or blocks the lease change it describes.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.errors import StoreError
from beat_handover.beat_lock.record import AuditEvent
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.cli.console import Console

log = logging.getLogger(__name__)


def operator_name() -> str:
    """The login name of whoever runs the command (a uid where the system has no name for it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def new_event(kind: str, result: str, detail: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        at=datetime.now(UTC),
        kind=kind,
        actor=operator_name(),
        host=socket.gethostname(),
        result=result,
        detail=dict(detail),
    )


def record(store: LeaseStore, name: str, event: AuditEvent, console: Console) -> None:
    """Append ``event`` to the lock's history; warn (and carry on) if the store refuses."""
    try:
        store.record_event(name, event)
    except StoreError as exc:
        log.warning("audit write failed lock=%s kind=%s error=%s", name, event.kind, exc)
        console.loud(
            f"warning: could not write the audit event {event.kind}={event.result} ({exc}); "
            "the lease change itself stands"
        )


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "host": event.host,
        "result": event.result,
        "detail": dict(event.detail),
    }


def event_line(event: AuditEvent) -> str:
    """``2026-03-01 10:15:02Z  handover  done  alice@ops-1  paas -> ecs, gap 0.42 s``."""
    detail = ", ".join(f"{key}={value}" for key, value in event.detail.items() if value is not None)
    when = event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return f"{when}  {event.kind:<9} {event.result:<16} {event.actor}@{event.host}  {detail}"
