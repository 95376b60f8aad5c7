"""The handover's vocabulary as types: what was asked, each preflight check, the critical-run
outlook, a tenure, the outcome and its exit code, the roll-back, and the report that gathers
them (as text for the operator and as one JSON object for scripts). Also the one interface
through which the procedure tells the operator what it is doing (:class:`Progress`)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.handover.exit_codes import ExitCode
from beat_handover.handover.instants import clock_time
from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.quiet import CriticalRun


@dataclass(frozen=True)
class HandoverRequest:
    """What the operator asked for (the command line holds the defaults)."""

    target: str
    guard_seconds: float
    timeout_seconds: float
    poll_seconds: float  # how often the target's standbys read the lease (beat_lock_poll_seconds)
    force: bool = False
    dry_run: bool = False


class CheckStatus(enum.Enum):
    OK = "ok"
    REFUSED = "refused"  # the handover must not go ahead
    FAILED = "failed"  # the check itself could not be made
    FORCED = "forced"  # would refuse, but --force was given
    STOP = "stop"  # nothing to do: the target already leads, pinned


@dataclass(frozen=True)
class Check:
    """One preflight check and what it found."""

    name: str
    status: CheckStatus
    summary: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "summary": self.summary}


class Verdict(enum.Enum):
    """What preflight concluded."""

    GO = "go"
    NOTHING_TO_DO = "nothing-to-do"
    REFUSED = "refused"
    STORE_MISSING = "store-missing"


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


class Outcome(enum.Enum):
    DONE = "done"
    PINNED = "pinned"  # the target already led; the pin was set, no tenure ended
    NOTHING_TO_DO = "nothing-to-do"
    DRY_RUN = "dry-run"
    REFUSED = "refused"
    CONFIG_ERROR = "config-error"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    NEEDS_A_PERSON = "needs-a-person"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Outcome.DONE: ExitCode.OK,
    Outcome.PINNED: ExitCode.OK,
    Outcome.NOTHING_TO_DO: ExitCode.OK,
    Outcome.DRY_RUN: ExitCode.OK,
    Outcome.REFUSED: ExitCode.REFUSED,
    Outcome.CONFIG_ERROR: ExitCode.USAGE,
    Outcome.ROLLED_BACK: ExitCode.ROLLED_BACK,
    Outcome.ROLLBACK_FAILED: ExitCode.NEEDS_A_PERSON,
    Outcome.NEEDS_A_PERSON: ExitCode.NEEDS_A_PERSON,
}


@dataclass(frozen=True)
class RollbackReport:
    """Why a handover was rolled back, to where, and whether that worked."""

    reason: str
    to: str | None  # the environment pinned back to; None: the pin was cleared
    ok: bool
    token: int | None  # of the roll-back's pin, if it was written
    leader: Tenure | None  # who leads again, if the roll-back waited for it
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "to": self.to,
            "ok": self.ok,
            "token": self.token,
            "leader": None if self.leader is None else self.leader.as_json(),
            "error": self.error,
        }


@dataclass(frozen=True)
class CriticalOutlook:
    """The critical runs around now, by the quiet-window report's rule (a guard on both sides
    of each): ``blocking`` holds the runs that keep a handover from starting now (none: quiet),
    ``quiet_from`` when the next window long enough for a handover begins, and when there is
    none, ``no_window`` says which entries leave none (``crowded``: an entry does it alone, so
    waiting cannot help). ``next_*`` is the next critical run after now. ``unknown`` says why
    nothing could be computed (no app given, an interval entry that never ran); the guard then
    refuses unless forced: "cannot tell" is not "quiet"."""

    entries: tuple[str, ...]
    next_entry: str | None = None
    next_at: datetime | None = None
    quiet_from: datetime | None = None
    unknown: str | None = None
    blocking: tuple[CriticalRun, ...] = ()
    no_window: str | None = None
    crowded: bool = False


Outlook = Callable[[LeaseRecord | None], CriticalOutlook]
"""The critical-run outlook at the lease record preflight read (procedure.outlook makes one)."""


class Progress(Protocol):
    """Where the procedure says what it is doing; the command line prints it
    (:class:`beat_handover.handover.cli.console.Console`)."""

    def line(self, text: str = "") -> None:
        """A line of narration."""

    def check(self, check: Check) -> None:
        """A preflight check, as soon as it is made."""

    def loud(self, text: str) -> None:
        """Something a person must act on."""

    def progress(self, label: str, elapsed_seconds: float) -> None:
        """Still waiting (``label``), ``elapsed_seconds`` into the wait."""

    def end_wait(self) -> None:
        """A wait is over."""


@dataclass
class HandoverReport:
    """Everything the handover found and did; ``message`` is the one-line conclusion."""

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
    rollback: RollbackReport | None = None

    @property
    def exit_code(self) -> ExitCode:
        return self.outcome.exit_code

    def as_json(self) -> dict[str, Any]:
        return {
            "result": self.outcome.value,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "lock": self.lock,
            "store": self.store,
            "target": self.target,
            "forced": self.forced,
            "checks": [check.as_json() for check in self.checks],
            "from": self.previous.as_json() if self.previous else None,
            "announced_seconds": _rounded(self.announced_seconds),
            "pin_token": self.pin_token,
            "to": self.new.as_json() if self.new else None,
            "acquired_after_seconds": _rounded(self.acquired_after_seconds),
            "gap_seconds": _rounded(self.gap_seconds),
            "next_critical_run": self._next_critical_json(),
            "rollback": None if self.rollback is None else self.rollback.as_json(),
        }

    def lines(self) -> list[str]:
        """The closing summary, after the checks and progress lines already printed."""
        lines = [self.message]
        if self.outcome is Outcome.PINNED:
            lines.append(f"  leader: {self.new} (unchanged)")
        elif self.outcome is Outcome.DONE:
            lines.append(f"  from:  {self.previous or 'nobody'}")
            lines.append(f"  to:    {self.new}")
            if self.gap_seconds is not None:
                lines.append(
                    f"  gap:   {format_duration(self.gap_seconds)} from the end of the old tenure "
                    f"(token {self.pin_token}) to the new holder's first renewal"
                )
        else:
            return lines
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
