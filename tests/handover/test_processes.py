"""Issue 4 with real processes: two ``celery beat`` processes (paas leading, ecs standing by) on
the moto server, a real worker recording every run, and ``handover`` run as the real console
script. The processes are shared by the tests of this module (starting them is most of the
cost); each test states the state it starts from and leaves paas leading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.handover.testing.lock_watch import (
    leading_environment,
    lease_seen,
    live_participants,
)
from tests.harness import (
    ROOT,
    Proc,
    Processes,
    each_slot_once,
    interval_slots,
    missing_and_extra,
    read_records,
    utc,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "tests.handover.app"
HANDOVER = str(Path(sys.executable).with_name("handover"))
CELERY = str(Path(sys.executable).with_name("celery"))
SHORT_LEASE = {
    "BEAT_LOCK_LEASE_SECONDS": "2",
    "BEAT_LOCK_RENEW_SECONDS": "0.4",
    "BEAT_LOCK_SAFE_SECONDS": "1.5",
    "BEAT_LOCK_POLL_SECONDS": "0.2",
}
# A beat whose heartbeat outlives a SIGSTOP by far: it stays a "live participant" while frozen.
LONG_LEASE = {
    "BEAT_LOCK_LEASE_SECONDS": "60",
    "BEAT_LOCK_RENEW_SECONDS": "2",
    "BEAT_LOCK_SAFE_SECONDS": "40",
    "BEAT_LOCK_POLL_SECONDS": "0.2",
}
STARTUP_SECONDS = 60  # a celery process on a loaded two-core machine


@dataclass
class Cluster:
    processes: Processes
    store: LeaseStore
    name: str
    env: dict[str, str]
    worker: Proc
    paas: Proc
    ecs: Proc

    def lease(self) -> LeaseRecord | None:
        return lease_seen(self.store, self.name)

    def leader(self) -> str | None:
        return leading_environment(self.store, self.name)

    def live(self, environment: str) -> int:
        return live_participants(self.store, self.name, environment)

    def handover(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (HANDOVER, "-A", APP),
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def sent_by(self, environment: str, seconds: float) -> None:
        """Wait until the worker has runs of ``environment`` for slots ``seconds`` from now."""
        until = utc(time.time() + seconds)
        wait_for(
            lambda: any(
                r.environment == environment and r.entry == "every-second" and r.slot >= until
                for r in read_records(self.processes.record_path)
            ),
            STARTUP_SECONDS,
            f"{environment} to send slots up to {until:%H:%M:%S}",
            *self.processes.procs,
        )

    def unchanged_since(self, before: LeaseRecord, events_before: int) -> None:
        after = self.lease()
        assert (after.token, after.holder, after.pin) == (before.token, before.holder, before.pin)
        assert len(self.store.events(self.name)) == events_before


@pytest.fixture(scope="module")
def cluster(moto_server, redis_server, tmp_path_factory) -> Iterator[Cluster]:
    name = f"h{uuid.uuid4().hex[:12]}"
    create_table(name, "eu-west-2")
    url = f"dynamodb://{name}?region=eu-west-2"
    env = {
        "BEAT_LOCK_URL": url,
        "BEAT_LOCK_NAME": name,
        # A database of the session's redis-server that no test flushes while this module runs.
        "TEST_BROKER_URL": f"redis://{redis_server.host}:{redis_server.port}/5",
        "TEST_QUEUE": name,
    }
    directory = tmp_path_factory.mktemp("handover-processes")
    with Processes(directory, APP, {**env, **SHORT_LEASE}) as processes:
        worker = processes.worker()
        paas = processes.beat("paas")
        store = open_store(parse_lock_url(url))
        cluster = Cluster(processes, store, name, {**os.environ, **env}, worker, paas, paas)
        wait_for(lambda: cluster.leader() == "paas", STARTUP_SECONDS, "paas to lead", paas)
        cluster.ecs = processes.beat("ecs")
        wait_for(lambda: cluster.live("ecs"), STARTUP_SECONDS, "ecs to stand by", cluster.ecs)
        cluster.sent_by("paas", 1)
        yield cluster
        store.close()


def test_bad_options_exit_2_and_celery_runs_the_same_commands(cluster):
    bad = cluster.handover("--to", "ecs", "--timeout", "0")
    assert bad.returncode == 2
    assert "Error: Invalid value for '--timeout': must be from 1s to 1h, got '0'" in bad.stderr

    status = cluster.handover("status", command=(CELERY, "-A", APP, "handover"))
    assert status.returncode == 0, status.stderr
    assert "  holder:       paas (instance " in status.stdout
    assert "    ecs: 1 live: " in status.stdout

    unknown = cluster.handover("--to", "ecs", "--bogus", command=(CELERY, "-A", APP, "handover"))
    assert unknown.returncode == 2
    assert "No such option '--bogus'" in unknown.stderr


def test_dry_run_changes_nothing(cluster):
    before, events = cluster.lease(), len(cluster.store.events(cluster.name))

    result = cluster.handover("--to", "ecs", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dry run: preflight passed; nothing was changed." in result.stdout
    assert (
        "[ok]      critical entries: none fired or fires within the 10m guard (next: letters"
        in result.stdout
    )
    cluster.unchanged_since(before, events)


def test_critical_entry_inside_the_guard_is_refused(cluster):
    before, events = cluster.lease(), len(cluster.store.events(cluster.name))

    result = cluster.handover("--to", "ecs", env={"BEAT_LOCK_CRITICAL": "every-second"})

    assert result.returncode == 3, result.stdout + result.stderr
    assert "[REFUSED] critical entries: every-second ran at " in result.stdout
    assert (
        "more critical runs) are within the 10m guard of a handover starting now; no quiet "
        "window can come: every-second runs at most 1s apart, and a window of 1m needs 21m "
        "between two critical runs (the 10m guard on both sides); shorten --guard, or use "
        "--force" in result.stdout
    )
    assert "wait for it" not in result.stdout
    assert "Refused by preflight (critical entries): nothing was changed." in result.stdout
    cluster.unchanged_since(before, events)


def test_handover_to_ecs_and_back_sends_every_slot_once(cluster):
    assert cluster.leader() == "paas"

    to_ecs = cluster.handover("--to", "ecs", "--json", "--timeout", "30s")

    assert to_ecs.returncode == 0, to_ecs.stdout + to_ecs.stderr
    report = json.loads(to_ecs.stdout)
    assert report["result"] == "done"
    assert (report["from"]["environment"], report["to"]["environment"]) == ("paas", "ecs")
    assert report["to"]["token"] == report["pin_token"] + 1 == report["from"]["token"] + 2
    assert 0 < report["gap_seconds"] < 10
    assert report["next_critical_run"]["entry"] == "letters"
    assert cluster.leader() == "ecs"
    cluster.sent_by("ecs", 2)

    to_paas = cluster.handover("--to", "paas", "--timeout", "30s")

    assert to_paas.returncode == 0, to_paas.stdout + to_paas.stderr
    assert "Done: paas leads (gap " in to_paas.stdout
    assert "  next critical run: letters at " in to_paas.stdout
    cluster.sent_by("paas", 2)
    records = [r for r in read_records(cluster.processes.record_path) if r.entry == "every-second"]
    slots = each_slot_once(records)["every-second"]
    missing, _ = missing_and_extra(slots, interval_slots(slots[0], timedelta(seconds=1), slots[-1]))
    assert not missing, f"slots never received: {missing}"
    # In slot order the sender changes exactly twice, with a higher token each time: no
    # interleaving of the two environments, so no overlap.
    senders = [(r.environment, r.token) for r in sorted(records, key=lambda r: r.slot)]
    runs = [senders[0], *(b for a, b in pairwise(senders) if b != a)]
    assert [env for env, _ in runs][-3:] == ["paas", "ecs", "paas"]
    assert runs[-3][1] < runs[-2][1] < runs[-1][1]


def test_no_live_participant_of_the_target_is_refused(cluster):
    cluster.ecs.send(15)
    cluster.ecs.wait_exit(30)
    wait_for(lambda: cluster.live("ecs") == 0, 10, "ecs's heartbeat to go")
    before, events = cluster.lease(), len(cluster.store.events(cluster.name))

    result = cluster.handover("--to", "ecs")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "[REFUSED] live ecs participants: no ecs beat has a live heartbeat" in result.stdout
    cluster.unchanged_since(before, events)


def test_ecs_that_never_takes_over_is_rolled_back(cluster):
    frozen = cluster.processes.beat("ecs", name="beat-ecs-frozen", **LONG_LEASE)
    wait_for(lambda: cluster.live("ecs"), STARTUP_SECONDS, "ecs to stand by", frozen)
    frozen.pause()

    result = cluster.handover("--to", "ecs", "--timeout", "3s")

    assert result.returncode == 4, result.stdout + result.stderr
    assert "Rolling back: ecs did not take over within 3s." in result.stdout
    assert "Rolled back: ecs did not take over within 3s; paas (instance " in result.stdout
    record = cluster.lease()
    assert (record.holder.environment, record.pin) == ("paas", "paas")
    cluster.sent_by("paas", 2)
    assert [(e.kind, e.result) for e in cluster.store.events(cluster.name)[:3]] == [
        ("handover", "rolled-back"),
        ("rollback", "done"),
        ("pin", "written"),
    ]
    frozen.kill()
    each_slot_once(read_records(cluster.processes.record_path))
