"""The test app of :mod:`tests.scheduler.app` with one start-up mistake, chosen by TEST_MISTAKE:
what a person gets wrong in a real app, for ``celery beat -S leased`` to refuse in one line."""

from __future__ import annotations

import os
from datetime import timedelta

from celery.schedules import BaseSchedule, crontab, schedule

from tests.scheduler.app import app


class OddMinutesSkipped(schedule):
    """A custom interval whose own is_due skips odd minutes: its runs cannot be named ahead."""

    def is_due(self, last_run_at):
        due, wait = super().is_due(last_run_at)
        return (due and self.now().minute % 2 == 0), wait


class Tides(BaseSchedule):
    """A schedule type of the app's own, with only is_due."""

    def is_due(self, last_run_at):
        return False, 3600.0


def _entry(value: object) -> dict:
    return {"task": "tests.scheduler.app.record", "schedule": value}


MISTAKES = {
    "timezone": lambda: app.conf.update(timezone="Europe/Lundon"),
    "string-schedule": lambda: app.conf.beat_schedule.update(cron=_entry("*/5 * * * *")),
    "custom-is-due": lambda: app.conf.beat_schedule.update(
        odd=_entry(OddMinutesSkipped(timedelta(seconds=15)))
    ),
    "custom-type": lambda: app.conf.beat_schedule.update(tides=_entry(Tides())),
    "no-task": lambda: app.conf.beat_schedule.update(notask={"schedule": crontab()}),
    "critical-typo": lambda: app.conf.update(beat_lock_critical=["every-secnd"]),
    "catch-up-glob": lambda: app.conf.update(beat_lock_catch_up={"tik-*": "all"}),
}

MISTAKES[os.environ["TEST_MISTAKE"]]()
