"""What the operator sees while a handover runs: check lines, notes and a waiting indicator.

Human text goes to stdout, or to stderr when stdout carries the one JSON object of ``--json``.
Colour only on a terminal, and never with ``--no-color`` or a non-empty ``NO_COLOR`` variable
(no-color.org). On a terminal the wait shows the elapsed time on one rewritten line, which is
erased when the wait ends; elsewhere (CI logs, pipes) it prints a plain line every few seconds,
so a log never fills with carriage returns.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

import click

from beat_handover.handover.procedure.model import Check, CheckStatus
from beat_handover.scheduler.durations import format_duration

PLAIN_PROGRESS_EVERY_SECONDS = 5.0
TTY_REFRESH_SECONDS = 0.1

_MARKS = {
    CheckStatus.OK: ("ok", "green"),
    CheckStatus.REFUSED: ("REFUSED", "red"),
    CheckStatus.FAILED: ("FAILED", "red"),
    CheckStatus.FORCED: ("FORCED", "yellow"),
    CheckStatus.STOP: ("--", "cyan"),
}


def colour_wanted(stream: TextIO, *, no_color: bool = False) -> bool:
    """Colour on ``stream``: a terminal, and neither ``--no-color`` nor ``NO_COLOR`` said no."""
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return tty and not no_color and not os.environ.get("NO_COLOR")


class Console:
    """Human output of one command (the procedure's :class:`~.model.Progress`)."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        stream: TextIO | None = None,
        no_color: bool = False,
        plain_every_seconds: float = PLAIN_PROGRESS_EVERY_SECONDS,
    ) -> None:
        self.stream = stream if stream is not None else (sys.stderr if json_mode else sys.stdout)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.colour = colour_wanted(self.stream, no_color=no_color)
        self.plain_every_seconds = plain_every_seconds
        self._shown_width = 0  # of the progress line on screen; 0 when there is none
        self._last_progress_at: float | None = None

    def line(self, text: str = "") -> None:
        self._end_progress()
        click.echo(text, file=self.stream)

    def check(self, check: Check) -> None:
        """One preflight line: ``  [ok]      store reachable: ...``."""
        mark, colour = _MARKS[check.status]
        styled = click.style(
            f"[{mark}]".ljust(10), fg=colour, bold=check.status is not CheckStatus.OK
        )
        self._end_progress()
        click.echo(f"  {styled}{check.name}: {check.summary}", file=self.stream, color=self.colour)

    def loud(self, text: str) -> None:
        """A message a person must act on: bold red on a colour terminal."""
        self._end_progress()
        click.echo(click.style(text, fg="red", bold=True), file=self.stream, color=self.colour)

    def progress(self, label: str, elapsed_seconds: float) -> None:
        """Show that we are still waiting, ``elapsed_seconds`` into the wait."""
        if self.tty:
            if (
                self._last_progress_at is not None
                and elapsed_seconds - self._last_progress_at < TTY_REFRESH_SECONDS
            ):
                return
            text = f"  {label}: {format_duration(round(elapsed_seconds, 1))}"
            self.stream.write("\r" + text.ljust(self._shown_width))
            self.stream.flush()
            self._shown_width = max(self._shown_width, len(text))
            self._last_progress_at = elapsed_seconds
            return
        due = (self._last_progress_at or 0.0) + self.plain_every_seconds
        if elapsed_seconds >= due:
            click.echo(f"  {label}: {format_duration(round(elapsed_seconds))}", file=self.stream)
            self._last_progress_at = elapsed_seconds

    def end_wait(self) -> None:
        """Close a wait, so the next wait starts its own count."""
        self._end_progress()
        self._last_progress_at = None

    def _end_progress(self) -> None:
        """Erase the progress line, so no stale count stays on screen."""
        if self._shown_width:
            self.stream.write("\r" + " " * self._shown_width + "\r")
            self.stream.flush()
            self._shown_width = 0
