"""The exit codes of ``handover`` and ``make demo``, in one enum; ``handover --help`` lists them
from here, so the documentation cannot drift from the code."""

from __future__ import annotations

import enum

from beat_handover.beat_lock.errors import BeatLockError, ConfigError, StoreMissing


class ExitCode(enum.IntEnum):
    """An exit status and what it tells a script."""

    OK = 0
    DEMO_FAILED = 1
    USAGE = 2
    REFUSED = 3
    ROLLED_BACK = 4
    NEEDS_A_PERSON = 5
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "done, or nothing to do (also a dry run whose preflight passed)",
    ExitCode.DEMO_FAILED: "make demo only: a claim the demo checks did not hold",
    ExitCode.USAGE: "usage or configuration error, including an unknown beat_lock_* setting, a "
    "missing lock table, a lock name never acquired there, an unknown route or one that exists "
    "already",
    ExitCode.REFUSED: "refused by preflight, the store could not be reached, or someone else "
    "changed the item first (or runs a rollout of the route): nothing was changed; route drain "
    "--wait: not drained in time",
    ExitCode.ROLLED_BACK: "the target did not take over in time; rolled back, the previous "
    "environment leads (route rollout: an alarm fired; the route is back at 0 %)",
    ExitCode.NEEDS_A_PERSON: "the roll-back failed, or the lease is not in the state expected: "
    "a person must look",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C) before the pin (an announced handover is "
    "withdrawn), or in another command",
}


def exit_code_for(error: BeatLockError) -> ExitCode:
    """USAGE for what the user must fix (configuration, a missing table), REFUSED otherwise."""
    return ExitCode.USAGE if isinstance(error, ConfigError | StoreMissing) else ExitCode.REFUSED
