"""A lock store's password stays secret: given as ``beat_lock_password`` it is masked by Celery
itself in ``celery inspect conf`` (asked of a real worker), used by a real leased beat against a
redis-server that requires it, and never printed by ``handover``."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_redis import factories

from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.handover.testing.lock_watch import leading_environment
from tests.harness import ROOT, Processes, wait_for
from tests.scheduler.conftest import TIMINGS

pytestmark = [pytest.mark.integration]

PASSWORD = "s3cret-beat-lock-pw"
guarded_redis = factories.redis_proc(port=None, save='""', password=PASSWORD)


def test_the_password_setting_is_masked_by_celery_and_used_by_beat(
    guarded_redis, broker_url, unique_name, tmp_path
):
    lock_url = f"redis://{guarded_redis.host}:{guarded_redis.port}/0"
    conf = {
        "beat_lock_url": lock_url,
        "beat_lock_password": PASSWORD,
        "beat_lock_name": unique_name,
    }
    # The app's own configuration, not the environment, names the lock and its password.
    env = {"TEST_BROKER_URL": broker_url, "TEST_APP_CONF": json.dumps(conf), **TIMINGS}
    with Processes(tmp_path, "tests.scheduler.conf_app", env) as processes:
        worker = processes.worker()
        beat = processes.beat("paas")
        store = open_store(replace(parse_lock_url(lock_url), password=PASSWORD))
        wait_for(lambda: leading_environment(store, unique_name) == "paas", 60, "beat to lead",
                 beat, worker)  # fmt: skip
        wait_for(lambda: worker.logged("ready."), 60, "the worker to be ready", worker)

        inspect = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tests.scheduler.conf_app", "inspect", "conf",
             "--timeout", "10", "--json"],
            cwd=ROOT, env=processes.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        status = subprocess.run(
            [str(Path(sys.executable).with_name("handover")), "-A", "tests.scheduler.conf_app",
             "status"],
            cwd=ROOT, env=processes.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        logs = processes.tails()

    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    (answer,) = json.loads(inspect.stdout).values()
    assert answer["beat_lock_password"] == "********"
    assert answer["beat_lock_url"] == lock_url
    assert PASSWORD not in inspect.stdout + inspect.stderr
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.startswith(f"Lock {unique_name!r} on redis at {lock_url}\n")
    assert "holder:       paas" in status.stdout
    assert PASSWORD not in status.stdout + status.stderr + logs
