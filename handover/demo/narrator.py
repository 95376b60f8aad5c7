"""How the demo talks: numbered steps, the commands it runs with their real output, and claims,
each printed as it is checked (``[ok]`` or ``[FAILED]``) and counted for the summary at the end.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from beat_handover.handover.demo.stage import CommandResult
from beat_handover.scheduler.durations import format_duration

INDENT = "   "
WIDTH = 100


class ClaimFailed(Exception):
    """A claim the rest of the demo depends on did not hold."""


@dataclass(frozen=True)
class Claim:
    text: str
    held: bool
    detail: str


class Narrator:
    """Prints the story and keeps the claims."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.claims: list[Claim] = []
        self._steps = 0

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def intro(self, directory: Path) -> None:
        self._print(
            "beat-handover demo: two real `celery beat` processes (paas and ecs) share "
            "one lease in DynamoDB"
        )
        self._print("(a local moto server); a real worker records every run it receives.")
        self._print(f"Its files: {directory} (removed at the end).")

    def step(self, title: str) -> None:
        self._steps += 1
        self._print()
        self._print(f"{self._steps}. {title}")

    def say(self, text: str) -> None:
        """A paragraph, wrapped to the width of a terminal."""
        self._print(
            textwrap.fill(
                text, WIDTH, initial_indent=INDENT, subsequent_indent=INDENT, break_on_hyphens=False
            )
        )

    def show(self, line: str) -> None:
        """A line of a table or a listing, printed as it is."""
        self._print(f"{INDENT}{line}")

    def command(self, result: CommandResult, *, redirect: str | None = None) -> None:
        """The command line, then its output as the operator saw it (stdout, then stderr)."""
        shown = f"{result.shown} > {redirect}" if redirect else result.shown
        self._print(f"{INDENT}$ {shown}")
        output = result.stderr if redirect else result.stdout + result.stderr
        for line in output.rstrip("\n").splitlines():
            self._print(f"{INDENT}  {line}".rstrip())
        if result.returncode != 0:
            self._print(f"{INDENT}  [exit {result.returncode}]")

    def claim(self, text: str, held: object, detail: str = "") -> bool:
        """Check and print one claim; returns whether it held."""
        claim = Claim(text, bool(held), detail)
        self.claims.append(claim)
        if claim.held:
            self._print(f"{INDENT}[ok]     {text}")
        else:
            self._print(f"{INDENT}[FAILED] {text}" + (f": {detail}" if detail else ""))
        return claim.held

    def require(self, text: str, held: object, detail: str = "") -> None:
        """A claim the next steps build on: ClaimFailed if it did not hold."""
        if not self.claim(text, held, detail):
            raise ClaimFailed(text)

    def broke_off(self, error: Exception) -> None:
        self._print()
        if not isinstance(error, ClaimFailed):
            self.claims.append(Claim("the demo ran to its end", False, str(error)))
            self._print(f"[FAILED] the demo could not go on: {error}")
        self._print("Stopping here: the later steps build on this one.")

    def interrupted(self, why: str) -> None:
        self._print()
        self._print(f"Interrupted ({why}): stopping everything the demo started.")

    def cleaned_up(self, stopped: list[str], directory: Path) -> None:
        self._print()
        self._print(f"Cleaned up: stopped {', '.join(stopped) or 'nothing'}; removed {directory}")

    def summary(self, seconds: float) -> bool:
        """Print which claims held; True if all did."""
        failed = [claim for claim in self.claims if not claim.held]
        self._print()
        if not failed:
            self._print(
                f"All {len(self.claims)} claims held, in {format_duration(round(seconds))}."
            )
            return True
        self._print(f"{len(failed)} of {len(self.claims)} claims did NOT hold:")
        for claim in failed:
            self._print(f"  - {claim.text}" + (f": {claim.detail}" if claim.detail else ""))
        return False
