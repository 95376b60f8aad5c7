"""Wall-clock instants for people. They are shown, never compared across hosts to decide
anything (see docs/design.md, "Time")."""

from __future__ import annotations

from datetime import UTC, datetime


def clock_time(moment: datetime) -> str:
    """An instant to the millisecond, as a handover's gap needs it: ``2026-03-01 10:15:02.250Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def history_time(moment: datetime) -> str:
    """An instant in every history (the lock's, a route's): ``2026-03-01 10:15:02Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def age_seconds(moment: datetime) -> float:
    """How long ago ``moment`` was by this host's wall clock (for people, never for decisions)."""
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def short_time(moment: datetime, now: datetime) -> str:
    """An instant in an overview: ``10:15:02Z`` on the day of ``now`` (UTC), else
    ``2026-03-01 10:15Z``."""
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return moment.strftime("%H:%M:%SZ")
    return moment.strftime("%Y-%m-%d %H:%MZ")
