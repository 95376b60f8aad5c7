"""Times for people: durations on the command line (``--guard 10m``) and in output, and
wall-clock instants, which are shown but never compared across hosts to decide anything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.durations import parse_duration


class Duration(click.ParamType):
    """A duration as ``quiet-windows`` takes it (``90s``, ``10m``, ``1h30m``, ``0``), in seconds.

    ``allow_zero`` says whether 0 is meaningful (a zero guard turns the critical-window check
    off; a zero timeout would roll back before anyone could take over, so it is refused).
    """

    name = "duration"

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        option = param.opts[0] if param is not None else "duration"
        try:
            seconds = parse_duration(str(value), option=option).total_seconds()
        except ConfigError as exc:
            self.fail(str(exc).removeprefix(f"{option} "), param, ctx)
        if seconds == 0 and not self.allow_zero:
            self.fail(f"must be longer than 0, got {value!r}", param, ctx)
        return seconds


def describe_seconds(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4m 05s``, ``2h 03m``, ``36d 05h``: short and exact enough for
    an operator."""
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def clock_time(moment: datetime) -> str:
    """A wall-clock instant for people: ``2026-03-01 10:15:02.250Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def age_seconds(moment: datetime) -> float:
    """How long ago ``moment`` was by this host's wall clock (for people, never for decisions)."""
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())
