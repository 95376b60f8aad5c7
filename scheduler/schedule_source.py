"""The schedule of the scheduler in use, for everything that asks about it outside beat: the
handover preflight, ``handover quiet-windows`` and ``handover status`` read the entries from the
same source beat runs (which may be a database), not only from ``app.conf.beat_schedule``.

The scheduler in use is ``app.conf.beat_scheduler`` (or the name given), resolved the way
``celery beat -S`` resolves it, aliases included. Celery's default (``PersistentScheduler``, when
``-S leased`` is given on beat's command line rather than in the app) reads as ``leased``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from celery.utils.imports import load_extension_class_names, symbol_by_name

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.entry_names import EntryNames, resolve_entry_names
from beat_handover.scheduler.leased import LeasedScheduler
from beat_handover.scheduler.settings import BeatLockSettings
from beat_handover.scheduler.startup_checks import app_timezone, check_beat_schedule

STOCK_DEFAULT = "celery.beat:PersistentScheduler"


@dataclass(frozen=True)
class Schedule:
    """The entries of the scheduler in use, their schedules, the zone crontabs are computed in,
    and the critical and catch-up names resolved against the entries."""

    scheduler: str
    entries: Mapping[str, Any]  # entry name -> the scheduler's entry
    tz: tzinfo
    names: EntryNames

    @property
    def schedules(self) -> dict[str, Any]:
        """Entry name -> schedule."""
        return {name: entry.schedule for name, entry in self.entries.items()}


def scheduler_class(app: Any, scheduler: str | None = None) -> type[LeasedScheduler]:
    """The leased scheduler class beat runs for `app`; ConfigError for a scheduler that is
    not fenced (compose it with LeasedScheduler, docs/schedule-sources.md)."""
    name = scheduler or app.conf.beat_scheduler or STOCK_DEFAULT
    if name == STOCK_DEFAULT:
        return LeasedScheduler
    aliases = dict(load_extension_class_names("celery.beat_schedulers") or {})
    try:
        cls = symbol_by_name(name, aliases=aliases)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"beat scheduler {name!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, LeasedScheduler)):
        raise ConfigError(
            f"beat scheduler {name!r} is not a leased scheduler, so its runs are not fenced; "
            "use leased, or compose your scheduler with LeasedScheduler "
            "(docs/schedule-sources.md)"
        )
    return cls


def read_schedule(app: Any, scheduler: str | None = None) -> Schedule:
    """Read the schedule beat would run for `app`, without starting beat. ConfigError for the
    start-up mistakes beat itself refuses (bad time zone, an entry that is not a schedule, a
    critical or catch-up name that matches no entry)."""
    cls = scheduler_class(app, scheduler)
    tz = app_timezone(app)
    check_beat_schedule(app.conf.beat_schedule)
    entries = cls.entries_of(app)
    settings = BeatLockSettings.from_app(app)
    names = resolve_entry_names(entries, settings.critical, settings.catch_up, settings.repeat_safe)
    return Schedule(f"{cls.__module__}:{cls.__qualname__}", entries, tz, names)
