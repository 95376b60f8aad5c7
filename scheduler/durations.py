"""Durations, one rule on every surface: what an operator types, what a setting holds, and how
the toolkit prints them.

Text forms (case and surrounding blanks ignored):

- units ``d``, ``h``, ``m``, ``s`` in that order, each at most once: ``90s``, ``10m``,
  ``1h30m``, ``2d``; only the seconds may have a fraction: ``0.5s``, ``1m2.5s``;
- ``0``;
- a bare number, which means **seconds** (``30``, ``1.5``), wherever the name says seconds or
  the values are seconds-scale (``beat_lock_*_seconds`` and their environment variables,
  ``--timeout``, ``--interval``, ``--cache-ttl``). Where the usual unit is minutes and a misread
  would weaken a safety check (``--guard``, ``--min-length``), a bare number is refused with a
  request for the unit, so ``10`` is never taken as ten seconds when ten minutes were meant.

A number that is not text (``app.conf.beat_lock_lease_seconds = 30``) is seconds. Every surface
bounds its values (:class:`DurationRange`); a value outside them is an error naming both ends.

Printed (:func:`format_duration`) in the same form, so what the toolkit prints can be typed back:
``0.012s``, ``0.45s``, ``2.5s``, ``12.3s``, ``4m5s``, ``1h30m``, ``35d23h20m``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from beat_handover.beat_lock.errors import ConfigError

UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
WITH_UNITS = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")
BARE = re.compile(r"\d+(?:\.\d+)?")
FORMS = "a number with units d, h, m or s in that order, e.g. 90s, 10m, 1h30m or 2h"


@dataclass(frozen=True)
class DurationRange:
    """What one surface accepts, in seconds: ``low`` (exclusive when 0, else inclusive) to
    ``high`` inclusive; ``off``, if set, says what 0 means there (``no check``) and allows it;
    ``bare`` whether a bare number (seconds) is accepted; ``whole`` whether only whole
    seconds are."""

    low: float
    high: float
    off: str | None = None
    bare: bool = True
    whole: bool = False

    def describe(self) -> str:
        """``from 1s to 1h``, ``greater than 0 and at most 1h``, with what 0 means if allowed."""
        if self.low == 0:
            span = f"greater than 0 and at most {format_duration(self.high)}"
        else:
            span = f"from {format_duration(self.low)} to {format_duration(self.high)}"
        return span if self.off is None else f"0 ({self.off}) or {span}"


def parse_duration(value: Any, allowed: DurationRange, *, source: str) -> float:
    """``value`` (text in one of the forms above, or a number of seconds) in seconds; else
    ConfigError naming ``source``, the value seen and what would be accepted."""
    seconds = _seconds(value, allowed, source)
    if seconds == 0 and allowed.off is not None:
        return 0.0
    if not (allowed.low < seconds if allowed.low == 0 else allowed.low <= seconds) or (
        seconds > allowed.high
    ):
        raise ConfigError(f"{source} must be {allowed.describe()}, got {value!r}")
    if allowed.whole and not float(seconds).is_integer():
        raise ConfigError(f"{source} must be whole seconds, got {value!r}")
    return float(seconds)


def _seconds(value: Any, allowed: DurationRange, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{source} must be a duration ({FORMS}), got {value!r}")
    if not isinstance(value, str):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{source} must be {allowed.describe()}, got {value!r}")
        return float(value)
    text = value.strip().lower()
    if BARE.fullmatch(text):
        if float(text) != 0 and not allowed.bare:
            raise ConfigError(
                f"{source} {value!r} needs a unit: write {text}m or {text}s, for example (a bare "
                "number is not taken here, so seconds are never read as minutes)"
            )
        return float(text)
    match = WITH_UNITS.fullmatch(text)
    if not text or match is None:
        bare = ", or a bare number of seconds" if allowed.bare else ""
        raise ConfigError(f"{source} {value!r} is not a duration; write it as {FORMS}{bare}")
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """Seconds as the toolkit prints them: three decimals under a second, two under ten, one
    under a minute, whole seconds from then on, leaving out leading and trailing zero units but
    not inner ones: ``0.012s``, ``2.5s``, ``12.3s``, ``4m5s``, ``1h30m``, ``4h0m26s``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 60:
        decimals = 3 if seconds < 1 else 2 if seconds < 10 else 1
        shown = f"{seconds:.{decimals}f}"
        if float(shown) < 60:
            return shown.rstrip("0").rstrip(".") + "s"
    remaining = round(seconds)
    counts = []
    for unit, size in UNITS:
        count, remaining = divmod(remaining, size)
        counts.append((count, unit))
    # Leading and trailing zero units are left out, inner ones kept: 4h0m26s is not 4h26m.
    shown = [index for index, (count, _unit) in enumerate(counts) if count]
    return "".join(f"{count}{unit}" for count, unit in counts[shown[0] : shown[-1] + 1])
