"""The outcome of a handover, as text for the operator and as one JSON object for scripts.

Exit codes: 0 done or nothing to do (or a dry run that would go ahead); 2 usage or configuration
error; 3 refused by preflight (nothing was changed); 4 the target did not take over in time and
the previous environment leads again; 5 the roll-back failed or the state is not what the
command expected: a person must look.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beat_handover.beat_lock.identity import Identity
from beat_handover.handover.instants import clock_time, describe_seconds
from beat_handover.handover.procedure.preflight import Check

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_ROLLED_BACK = 4
EXIT_ROLLBACK_FAILED = 5


class Outcome(enum.Enum):
    DONE = "done"
    NOTHING_TO_DO = "nothing-to-do"
    DRY_RUN = "dry-run"
    REFUSED = "refused"
    CONFIG_ERROR = "config-error"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    NEEDS_A_PERSON = "needs-a-person"

    @property
    def exit_code(self) -> int:
        return {
            Outcome.DONE: EXIT_OK,
            Outcome.NOTHING_TO_DO: EXIT_OK,
            Outcome.DRY_RUN: EXIT_OK,
            Outcome.REFUSED: EXIT_REFUSED,
            Outcome.CONFIG_ERROR: EXIT_USAGE,
            Outcome.ROLLED_BACK: EXIT_ROLLED_BACK,
            Outcome.ROLLBACK_FAILED: EXIT_ROLLBACK_FAILED,
            Outcome.NEEDS_A_PERSON: EXIT_ROLLBACK_FAILED,
        }[self]


@dataclass(frozen=True)
class Tenure:
    """One holder of the lease: who, and under which fencing token."""

    holder: Identity
    token: int

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.holder.environment,
            "instance": self.holder.instance_id,
            "token": self.token,
        }

    def __str__(self) -> str:
        return f"{self.holder.environment} (instance {self.holder.instance_id}, token {self.token})"


@dataclass
class HandoverReport:
    """Everything the command found and did; ``message`` is the one-line conclusion."""

    lock: str
    store: str
    target: str
    outcome: Outcome = Outcome.REFUSED
    message: str = ""
    checks: list[Check] = field(default_factory=list)
    forced: bool = False
    previous: Tenure | None = None
    announced_seconds: float | None = None  # from announcing the handover to the pin
    pin_token: int | None = None
    new: Tenure | None = None
    acquired_after_seconds: float | None = None
    gap_seconds: float | None = None
    next_critical_entry: str | None = None
    next_critical_at: datetime | None = None
    rollback: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    def as_json(self) -> dict[str, Any]:
        return {
            "result": self.outcome.value,
            "exit_code": self.exit_code,
            "message": self.message,
            "lock": self.lock,
            "store": self.store,
            "target": self.target,
            "forced": self.forced,
            "checks": [
                {"name": c.name, "status": c.status, "summary": c.summary} for c in self.checks
            ],
            "from": self.previous.as_json() if self.previous else None,
            "announced_seconds": _rounded(self.announced_seconds),
            "pin_token": self.pin_token,
            "to": self.new.as_json() if self.new else None,
            "acquired_after_seconds": _rounded(self.acquired_after_seconds),
            "gap_seconds": _rounded(self.gap_seconds),
            "next_critical_run": self._next_critical_json(),
            "rollback": self.rollback,
        }

    def lines(self) -> list[str]:
        """The closing summary, after the checks and progress lines already printed."""
        lines = [self.message]
        if self.outcome is not Outcome.DONE:
            return lines
        lines.append(f"  from:  {self.previous or 'nobody'}")
        lines.append(f"  to:    {self.new}")
        if self.gap_seconds is not None:
            lines.append(
                f"  gap:   {describe_seconds(self.gap_seconds)} from the end of the old tenure "
                f"(token {self.pin_token}) to the new holder's first renewal"
            )
        lines.append(f"  next critical run: {self._next_critical_text()}")
        return lines

    def _next_critical_json(self) -> dict[str, Any] | None:
        if self.next_critical_at is None:
            return None
        return {
            "entry": self.next_critical_entry,
            "at": self.next_critical_at.isoformat(),
            "sender": self.new.as_json() if self.new else None,
        }

    def _next_critical_text(self) -> str:
        if self.next_critical_at is None:
            return "none scheduled (or not known without the app's schedule)"
        sender = self.new.holder if self.new else "whoever leads then"
        return (
            f"{self.next_critical_entry} at {clock_time(self.next_critical_at)}, sent by {sender}"
        )


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)
