"""A Celery beat scheduler that dispatches only through fenced slot claims, and its fire-time maths.

``celery -A proj beat -S leased`` (or ``-S beat_handover.scheduler.LeasedScheduler``). The scheduler
class is imported on first use, so ``beat_handover.scheduler.settings`` and the fire-time functions
stay importable without loading Celery's beat machinery.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LeasedScheduler"]


def __getattr__(name: str) -> Any:
    if name == "LeasedScheduler":
        from beat_handover.scheduler.leased import LeasedScheduler

        return LeasedScheduler
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
