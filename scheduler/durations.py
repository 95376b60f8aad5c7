"""Durations as operators type them on the command line (90s, 10m, 1h30m, 2h, 1d) and as the
tables print them."""

from __future__ import annotations

import re
from datetime import timedelta

from beat_handover.beat_lock.errors import ConfigError

DURATION_PATTERN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str, *, option: str) -> timedelta:
    """``1h30m`` -> 90 minutes. Units d, h, m, s in that order; ``0`` is zero. ConfigError naming
    `option` and the text otherwise."""
    cleaned = text.strip().lower()
    if cleaned == "0":
        return timedelta(0)
    match = DURATION_PATTERN.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ConfigError(
            f"{option} {text!r} is not a duration; write it as a number with units d, h, m or s "
            "in that order, e.g. 90s, 10m, 1h30m or 2h"
        )
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(length: timedelta) -> str:
    """90 minutes -> ``1h30m``; whole seconds, zero as ``0m``."""
    remaining = int(length.total_seconds())
    parts = []
    for unit, size in UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) if parts else "0m"
