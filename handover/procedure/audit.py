"""Who changes a lock or a route, and the lock's audit trail as the handover writes it.

:func:`operator` is the one spelling of "who made this change": the login name and this host's
short name, in the lock's history and in every route's alike (``alice@ops-1``).

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
from typing import Any, NamedTuple

from beat_handover.beat_lock.errors import StoreError
from beat_handover.beat_lock.record import AuditEvent
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.handover.procedure.model import Progress

log = logging.getLogger(__name__)


class Operator(NamedTuple):
    """Who runs the command: a login name and a host."""

    user: str
    host: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}"


def operator() -> Operator:
    """The login name of whoever runs the command (``uid-N`` where the system has no name for
    it) and this host's name up to the first dot."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid-{os.getuid()}"
    return Operator(user, socket.gethostname().split(".")[0] or "localhost")


def record(
    store: LeaseStore,
    name: str,
    kind: str,
    result: str,
    detail: Mapping[str, Any],
    progress: Progress,
) -> None:
    """Append an event (``kind``, ``result``, ``detail``; by :func:`operator`, now) to the lock's
    history; warn (and carry on) if the store refuses."""
    who = operator()
    event = AuditEvent(
        at=datetime.now(UTC),
        kind=kind,
        actor=who.user,
        host=who.host,
        result=result,
        detail=dict(detail),
    )
    try:
        store.record_event(name, event)
    except StoreError as exc:
        log.warning("audit write failed lock=%s kind=%s error=%s", name, event.kind, exc)
        progress.loud(
            f"warning: could not write the audit event {event.kind}={event.result} ({exc}); "
            "the lease change itself stands"
        )
