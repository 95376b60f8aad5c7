"""The message headers a claimed run carries, written by the scheduler and read by the guard."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TOKEN = "beat_lock_token"
ENVIRONMENT = "beat_lock_environment"
ENTRY = "beat_entry"
SLOT = "beat_slot"


def format_slot(slot: datetime) -> str:
    """ISO 8601 in UTC, e.g. ``2025-03-30T01:00:00+00:00``."""
    return slot.astimezone(UTC).isoformat()


def run_headers(entry: str, slot: datetime, *, token: int, environment: str) -> dict[str, Any]:
    """The headers of one published run."""
    return {TOKEN: token, ENVIRONMENT: environment, ENTRY: entry, SLOT: format_slot(slot)}


def slot_of(headers: Mapping[str, Any] | None) -> tuple[str, datetime] | None:
    """``(entry, slot)`` named by a message's headers, or None if it was not sent by the leased
    scheduler. Raises ValueError if the headers are there but malformed."""
    if not headers or ENTRY not in headers or SLOT not in headers:
        return None
    entry, slot = headers[ENTRY], headers[SLOT]
    if not isinstance(entry, str) or not entry or not isinstance(slot, str):
        raise ValueError(f"headers {ENTRY}={entry!r} {SLOT}={slot!r} do not name a run")
    parsed = datetime.fromisoformat(slot)
    if parsed.tzinfo is None:
        raise ValueError(f"header {SLOT}={slot!r} has no UTC offset")
    return entry, parsed.astimezone(UTC)
