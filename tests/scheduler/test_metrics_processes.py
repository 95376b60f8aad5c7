"""Real ``celery beat`` processes send their metrics to a real UDP socket of the test (as a statsd
server would receive them), and one of them writes CloudWatch EMF lines on its standard output.
A pin then moves the lead, and the metrics say so."""

from __future__ import annotations

import json
import socket
import time

import pytest

from beat_handover.beat_lock.layout import new_version
from tests.harness import Processes, wait_for
from tests.scheduler.conftest import Lock
from tests.scheduler.test_leased_processes import lead, stand_by

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Received:
    """Every statsd line the socket got so far."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lines: list[str] = []

    def has(self, *lines: str) -> bool:
        while True:
            try:
                self.lines.append(self.sock.recv(65535).decode())
            except TimeoutError:
                break
        return all(line in self.lines for line in lines)

    def starting(self, text: str) -> list[str]:
        return [line for line in self.lines if line.startswith(text)]


def emf_documents(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith('{"_aws":')]


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_beats_send_statsd_and_emf_metrics_an_operator_can_alarm_on(
    processes: Processes, lock: Lock, statsd_listener: socket.socket
):
    statsd = statsd_listener
    statsd.settimeout(0.1)  # Received.has reads what has come, without waiting long
    port = statsd.getsockname()[1]
    paas = lead(
        processes,
        "paas",
        BEAT_LOCK_STATSD_URL=f"statsd://127.0.0.1:{port}/beat_lock",
        BEAT_LOCK_METRICS_EMF="true",
    )
    ecs = stand_by(processes, "ecs", paas, STATSD_HOST="127.0.0.1", STATSD_PORT=str(port))
    received = Received(statsd)
    tags = f"#lock:{lock.name}"
    steady = [
        f"beat_lock.leader:1|g|{tags},environment:paas",
        f"beat_lock.leader:0|g|{tags},environment:ecs",
        f"beat_lock.standbys:1|g|{tags},environment:ecs",
        f"beat_lock.runs.claimed:1|c|{tags},environment:paas,entry:every-second",
        f"beat_lock.runs.sent:1|c|{tags},environment:paas,entry:every-second",
        f"beat_lock.runs.sent:1|c|{tags},environment:paas,entry:every-second-critical",
    ]
    wait_for(lambda: received.has(*steady), 30, "the steady metrics", paas, ecs)

    assert paas.logged(f". metrics -> statsd://127.0.0.1:{port}/beat_lock, EMF lines on stdout")
    assert ecs.logged(f". metrics -> statsd://127.0.0.1:{port}/beat_lock\n")
    lateness = received.starting("beat_lock.runs.lateness:")
    assert lateness and all(
        line.endswith(f"|ms|{tags},environment:paas,entry:" + line.rsplit(":", 1)[1])
        for line in lateness
    )
    late_ms = [float(line.split(":")[1].split("|")[0]) for line in lateness]
    assert 0 <= min(late_ms) < 60_000
    renewals = received.starting("beat_lock.renewal.latency:")
    assert renewals and all(line.endswith(f"|ms|{tags},environment:paas") for line in renewals)

    store = lock.store()
    record = store.read(lock.name)
    assert store.pin(
        lock.name, "ecs", expected_token=record.token, new_version=new_version(), end_tenure=True
    )
    store.close()
    wait_for(
        lambda: received.has(f"beat_lock.leader:1|g|{tags},environment:ecs"),
        30,
        "ecs to say it leads",
        paas,
        ecs,
    )

    def refused() -> bool:
        received.has()
        lines = received.starting("beat_lock.renewal.failed:1|c|") + received.starting(
            "beat_lock.claims.refused:1|c|"
        )
        return any(
            line.startswith(f"beat_lock.{what}:1|c|{tags},environment:paas,")
            and line.endswith(reason)
            for line in lines
            for what, reason in [
                ("renewal.failed", "reason:refused"),
                ("claims.refused", "reason:lease-lost"),
            ]
        )

    wait_for(refused, 10, "paas's renewal or claim to be refused", paas)
    assert f"beat_lock.leader:0|g|{tags},environment:paas" in received.lines[-200:]

    documents = emf_documents(paas.log())
    assert not emf_documents(ecs.log())
    sent = [d for d in documents if "runs.sent" in d]
    assert sent[0]["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "BeatHandover/Beat",
            "Dimensions": [["lock"], ["lock", "environment"], ["lock", "entry"]],
            "Metrics": [{"Name": "runs.sent", "Unit": "Count"}],
        }
    ]
    assert {d["entry"] for d in sent} >= {"every-second", "every-second-critical"}
    leader = [d["leader"] for d in documents if "leader" in d]
    assert 1 in leader and leader[-1] == 0
    assert time.time() * 1000 - sent[0]["_aws"]["Timestamp"] < 120_000
