"""The worker-side guard: a task base class that executes each scheduled run at most once.

The leased scheduler already publishes a slot at most once. The guard is for tasks that must
never run twice even if a message is delivered twice (a broker redelivery, a manual re-publish,
a second scheduler that does not fence)::

    @app.task(base=OncePerSlotTask)
    def send_letters(): ...

Before the body runs, the guard records ``(beat_entry, beat_slot)`` from the message headers in
the lease store (set-if-absent, expiring after ``beat_lock_guard_ttl_seconds``); if the run was
recorded before, it logs a warning and returns None without running the body. Messages without
those headers (a manual ``delay()``) run normally. The mark is written before the body runs, so a
run whose body then fails is not run again by a redelivery: at most once, like the claim. If the
store cannot be reached the task fails rather than run unguarded.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from beat_handover.scheduler.headers import RESENT_FROM, TOKEN, format_slot, slot_of
from beat_handover.scheduler.run_marks import RunMarks
from beat_handover.scheduler.settings import BeatLockSettings

logger = logging.getLogger(__name__)


class OncePerSlotTask(Task):
    """Base class for tasks whose scheduled runs must execute at most once."""

    _run_marks: RunMarks | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = slot_of(self.request.headers) if not self.request.called_directly else None
        if run is not None:
            entry, slot = run
            if not self.run_marks().mark(entry, slot):
                # The headers say which tenure sent this copy: a former leader's late publish,
                # or a slot in doubt sent again (RESENT_FROM), is recognisable in the log.
                headers = self.request.headers or {}
                logger.warning(
                    "task=%s entry=%s slot=%s already executed: skipping this delivery id=%s "
                    "token=%s resent_from=%s",
                    self.name,
                    entry,
                    format_slot(slot),
                    self.request.id,
                    headers.get(TOKEN),
                    headers.get(RESENT_FROM),
                )
                return None
        return super().__call__(*args, **kwargs)

    def run_marks(self) -> RunMarks:
        """The marks store of this worker process, opened on first use (after any fork)."""
        if self._run_marks is None:
            settings = BeatLockSettings.from_app(self.app)
            self._run_marks = RunMarks(
                settings.require_location(),
                settings.name,
                settings.guard_ttl_seconds,
                settings.timings,
            )
        return self._run_marks
