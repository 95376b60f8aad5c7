"""The message headers a claimed run carries, written by the scheduler and read by the guard."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from beat_handover.beat_lock.errors import ConfigError

TOKEN = "beat_lock_token"
ENVIRONMENT = "beat_lock_environment"
ENTRY = "beat_entry"
SLOT = "beat_slot"
RESENT_FROM = "beat_lock_resent_from"  # a slot in doubt sent again: the token that claimed it


def format_slot(slot: datetime) -> str:
    """ISO 8601 in UTC, e.g. ``2025-03-30T01:00:00+00:00``."""
    return slot.astimezone(UTC).isoformat()


def run_headers(entry: str, slot: datetime, *, token: int, environment: str) -> dict[str, Any]:
    """The headers of one published run."""
    return {TOKEN: token, ENVIRONMENT: environment, ENTRY: entry, SLOT: format_slot(slot)}


def slot_of(headers: Mapping[str, Any] | None) -> tuple[str, datetime] | None:
    """``(entry, slot)`` named by a message's headers, or None if it was not sent by the leased
    scheduler. ConfigError if the headers are there but do not name a run (the guard then fails
    the task rather than run it unguarded)."""
    if not headers or ENTRY not in headers or SLOT not in headers:
        return None
    entry, slot = headers[ENTRY], headers[SLOT]
    try:
        parsed = datetime.fromisoformat(slot) if isinstance(slot, str) else None
    except ValueError:
        parsed = None
    if not isinstance(entry, str) or not entry or parsed is None:
        raise ConfigError(
            f"message headers {ENTRY}={entry!r} {SLOT}={slot!r} do not name a run (an entry name "
            "and an ISO 8601 time); they were not written by the leased scheduler"
        )
    if parsed.tzinfo is None:
        raise ConfigError(f"message header {SLOT}={slot!r} has no UTC offset")
    return entry, parsed.astimezone(UTC)
