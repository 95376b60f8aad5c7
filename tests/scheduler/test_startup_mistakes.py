"""Mistakes in the app itself stop ``celery beat -S leased`` at once: one line naming the entry or
value, why and what to do, status 78, no traceback (stock beat gives a traceback and exit 1, or
runs something else than what was written)."""

from __future__ import annotations

import os

import pytest

from tests.harness import Processes
from tests.scheduler.conftest import Lock

pytestmark = [pytest.mark.integration]

PREFIX = "Error: leased beat scheduler: "
CASES = {
    "timezone": "app.conf.timezone 'Europe/Lundon' is not a time zone Celery can load "
    "(ZoneInfoNotFoundError: 'No time zone found with key Europe/Lundon'); use an IANA name "
    "such as Europe/London or UTC",
    "string-schedule": "beat_schedule entry 'cron': schedule '*/5 * * * *' (str) is not a "
    "schedule; use crontab(minute=0), a number of seconds, a timedelta or celery's schedule()",
    "custom-is-due": "beat_schedule entry 'odd' cannot be fenced: OddMinutesSkipped overrides "
    "is_due of schedule, so its fire times cannot be named in advance and every environment "
    "could name a run differently; give the class a next_fire_time(after) method that returns "
    "the first fire time after `after` (docs/schedules.md), or use the schedule type unchanged",
    "custom-type": "beat_schedule entry 'tides' cannot be fenced: Tides schedule <tests.scheduler"
    ".mistakes.Tides object at",
    "no-task": "beat_schedule entry 'notask' has no 'task' (keys: 'schedule'); every entry "
    "needs a task name and a schedule",
    "critical-typo": "beat_lock_critical: 'every-secnd' matches no entry of the schedule; did "
    "you mean 'every-second' or",
    "catch-up-glob": "beat_lock_catch_up: 'tik-*' matches no entry of the schedule; known "
    "entries: every-minute, every-second, every-second-all, every-second-critical",
}


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_each_mistake_stops_beat_with_one_line_and_status_78(tmp_path, lock: Lock, broker_url):
    beats = {}
    for mistake in CASES:
        procs = Processes(
            tmp_path / mistake,
            "tests.scheduler.mistakes",
            {"TEST_BROKER_URL": broker_url, "TEST_MISTAKE": mistake, **lock.env()},
        )
        (tmp_path / mistake).mkdir()
        beats[mistake] = (procs, procs.beat("paas", name=mistake))
    try:
        for mistake, (_, beat) in beats.items():
            status = beat.wait_exit(60)
            output = beat.log()
            errors = [line for line in output.splitlines() if line.startswith("Error:")]
            assert status == os.EX_CONFIG, f"{mistake}: status {status}\n{output}"
            assert len(errors) == 1, f"{mistake}:\n{output}"
            assert errors[0].startswith(PREFIX + CASES[mistake]), f"{mistake}:\n{errors[0]}"
            assert "Traceback" not in output, f"{mistake}:\n{output}"
    finally:
        for procs, _ in beats.values():
            procs.close()
