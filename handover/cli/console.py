"""What the operator sees while a command runs: check lines, notes and a waiting indicator.

Human text goes to stdout, or to stderr when stdout carries the one JSON object of ``--json``.
On a terminal the wait shows live elapsed seconds on one rewritten line; elsewhere (CI logs,
pipes) it prints a plain line every few seconds, so a log never fills with carriage returns.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click

PLAIN_PROGRESS_EVERY_SECONDS = 5.0
TTY_REFRESH_SECONDS = 0.1

_MARKS = {
    "ok": ("ok", "green"),
    "refused": ("REFUSED", "red"),
    "failed": ("FAILED", "red"),
    "forced": ("FORCED", "yellow"),
    "stop": ("--", "cyan"),
}


class Console:
    """Human output of one command."""

    def __init__(self, *, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else (sys.stderr if json_mode else sys.stdout)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress_shown = False
        self._last_progress_at: float | None = None

    def line(self, text: str = "") -> None:
        self._end_progress()
        click.echo(text, file=self.stream)

    def check(self, status: str, name: str, summary: str) -> None:
        """One preflight line: ``  [ok]      store reachable: ...``."""
        mark, colour = _MARKS[status]
        styled = click.style(f"[{mark}]".ljust(10), fg=colour, bold=status != "ok")
        self._end_progress()
        click.echo(f"  {styled}{name}: {summary}", file=self.stream, color=self.tty)

    def loud(self, text: str) -> None:
        """A message a person must act on: bold red on a terminal."""
        self._end_progress()
        click.echo(click.style(text, fg="red", bold=True), file=self.stream, color=self.tty)

    def progress(self, label: str, elapsed_seconds: float) -> None:
        """Show that we are still waiting, ``elapsed_seconds`` into the wait."""
        if self.tty:
            if (
                self._last_progress_at is not None
                and elapsed_seconds - self._last_progress_at < TTY_REFRESH_SECONDS
            ):
                return
            self.stream.write(f"\r  {label}: {elapsed_seconds:5.1f} s ")
            self.stream.flush()
            self._progress_shown = True
            self._last_progress_at = elapsed_seconds
            return
        due = (self._last_progress_at or 0.0) + PLAIN_PROGRESS_EVERY_SECONDS
        if elapsed_seconds >= due:
            click.echo(f"  {label}: {elapsed_seconds:.0f} s", file=self.stream)
            self._last_progress_at = elapsed_seconds

    def end_wait(self) -> None:
        """Close a wait, so the next wait starts its own count."""
        self._end_progress()
        self._last_progress_at = None

    def _end_progress(self) -> None:
        if self._progress_shown:
            self.stream.write("\n")
            self._progress_shown = False
