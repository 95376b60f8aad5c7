"""Sentry Crons sees every run of the leased scheduler as it sees stock beat's: sentry-sdk's
Celery integration hooks ``Scheduler.apply_entry``, which the leased scheduler publishes through.
Real sentry-sdk, real ``celery beat`` (stock and ``-S leased``) and worker processes, and a local
recorder of Sentry envelopes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import Processes, wait_for
from tests.integrations.sentry_recorder import SentryRecorder, sentry_recorder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "tests.integrations.sentry_app"
RUN_WAIT_SECONDS = 150  # an every-minute entry, on a loaded machine


@pytest.fixture
def recorder() -> SentryRecorder:
    with sentry_recorder() as recorder:
        yield recorder


def runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_ins_per_run(recorder: SentryRecorder, run: dict) -> list[str]:
    """The statuses Sentry received for the run's check-in id, in order."""
    check_in = run["sentry-monitor-check-in-id"]
    return [c["status"] for c in recorder.received() if c.get("check_in_id") == check_in]


def test_each_leased_run_checks_in_as_a_stock_beat_run(tmp_path, redis_url, recorder):
    broker = redis_url.rsplit("/", 1)[0]
    beats = {}
    for scheduler, db in (("celery.beat:PersistentScheduler", 2), ("leased", 3)):
        kind = "stock" if scheduler != "leased" else "leased"
        directory = tmp_path / kind
        directory.mkdir()
        procs = Processes(
            directory,
            APP,
            {
                "SENTRY_DSN": recorder.dsn,
                "TEST_BROKER_URL": f"{broker}/{db}",
                "BEAT_LOCK_URL": f"{broker}/4",
                "BEAT_LOCK_NAME": f"sentry-{tmp_path.name}",
            },
        )
        worker = procs.worker()
        beat = procs.beat("paas", scheduler=scheduler)
        beats[kind] = (procs, beat, worker, procs.record_path)
    try:
        for kind, (_, beat, worker, path) in beats.items():

            def checked_in(path: Path = path) -> bool:
                done = runs(path)
                return bool(done) and check_ins_per_run(recorder, done[0]) == ["in_progress", "ok"]

            wait_for(checked_in, RUN_WAIT_SECONDS, f"a {kind} run checked in", beat, worker)
    finally:
        for procs, *_ in beats.values():
            procs.close()
    for kind, (*_, path) in beats.items():
        for run in runs(path):
            assert run["sentry-monitor-slug"] == "letters-minutely", (kind, run)
            assert check_ins_per_run(recorder, run)[:1] == ["in_progress"], (kind, run)
    leased = runs(beats["leased"][3])
    assert all(run["beat_slot"] and run["beat_lock_token"] for run in leased), leased
