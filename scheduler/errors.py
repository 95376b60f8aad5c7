"""Errors of the fire-time maths: a schedule whose runs cannot be computed from what we know.

Two branches of the toolkit's one error tree, drawn in :mod:`beat_handover.beat_lock.errors`.
"""

from __future__ import annotations

from beat_handover.beat_lock.errors import BeatLockError


class PhaseUnknown(BeatLockError):
    """An interval entry's runs cannot be placed: no claimed slot to anchor them on yet."""


class UnsupportedSchedule(BeatLockError):
    """A schedule whose fire times cannot be computed exactly (solar, custom, or never firing)."""
