"""Errors of the fire-time maths: a schedule whose runs cannot be computed from what we know.

beat_handover.beat_lock.errors.BeatLockError
├── PhaseUnknown          an interval entry has no anchor (no claimed slot) to count from
└── UnsupportedSchedule   a schedule type whose fire times we cannot compute exactly
"""

from __future__ import annotations

from beat_handover.beat_lock.errors import BeatLockError


class PhaseUnknown(BeatLockError):
    """An interval entry's runs cannot be placed: no claimed slot to anchor them on yet."""


class UnsupportedSchedule(BeatLockError):
    """A schedule whose fire times cannot be computed exactly (solar, custom, or never firing)."""
