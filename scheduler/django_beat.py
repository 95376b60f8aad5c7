"""django-celery-beat's schedule, fenced: ``celery -A proj beat -S
beat_handover.scheduler.django_beat:LeasedDatabaseScheduler``.

The composition pattern for any schedule source: a class deriving from
:class:`~beat_handover.scheduler.leased.LeasedScheduler` first and the source's scheduler second.
The source keeps what it owns (its entries, read live from its database, with their own time
zones; its run bookkeeping through ``reserve`` and ``sync``); the leased scheduler decides which
slots are due, claims them and publishes through Celery's ``apply_entry``. Two methods are the
seam: :meth:`entries_of` (what the schedule holds, read without starting beat, for the banner,
preflight, quiet windows and status) and :meth:`entry_gates` (the source's own gates on its
entries).

Guaranteed, as with stock ``DatabaseScheduler``: entries added, edited, enabled or disabled in
the admin are seen within ``beat_max_loop_interval`` (5 s by default here); ``start_time``,
``expires`` and ``one_off`` gate the runs (an expired entry and a one-off that has run are
disabled in the database, as django-celery-beat does); a crontab runs in its own time zone;
``clocked`` runs once at its time; ``last_run_at`` and ``total_run_count`` are written back on
``sync`` (every ``beat_sync_every`` runs, at most ``sync_every`` seconds apart, and at stop).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery.beat import ScheduleEntry
from django_celery_beat.schedulers import DatabaseScheduler

from beat_handover.scheduler.gates import OPEN, Gates
from beat_handover.scheduler.leased import LeasedScheduler

CLOSED = Gates(open=False)


class LeasedDatabaseScheduler(LeasedScheduler, DatabaseScheduler):
    """django-celery-beat's ``DatabaseScheduler`` whose runs are fenced slot claims."""

    @classmethod
    def entries_of(cls, app: Any) -> dict[str, ScheduleEntry]:
        """Every enabled periodic task in the database (all of them: the running scheduler
        loads crontabs only near their hour), and the ``beat_schedule`` entries the database
        does not hold yet (beat writes them there when it starts). Nothing is written."""
        entries: dict[str, Any] = {
            name: ScheduleEntry(**dict(fields, name=name, app=app))
            for name, fields in (app.conf.beat_schedule or {}).items()
        }
        for model in cls.Model.objects.enabled():
            try:
                entries[model.name] = cls.Entry(model, app=app)
            except ValueError:
                continue  # django-celery-beat skips a row it cannot load, as all_as_schedule does
        return entries

    def entry_gates(self, entry: ScheduleEntry, now: datetime) -> Gates:
        """``ModelEntry.is_due``'s gates, with its side effects: an expired entry is disabled;
        a one-off that has run is disabled and its run count reset (what the admin then shows)."""
        model = getattr(entry, "model", None)
        if model is None:
            return OPEN
        if not model.enabled:
            return CLOSED
        if model.expires is not None and now >= model.expires:
            entry._disable(model)
            return CLOSED
        if model.one_off and model.total_run_count > 0:
            model.enabled = False
            model.total_run_count = 0
            model.no_changes = False
            model.save()
            return CLOSED
        return Gates(start=model.start_time, expires=model.expires, once=model.one_off)
