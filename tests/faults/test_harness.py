"""The fault tools themselves: a shifted wall clock leaves sleeps alone and can be stepped while a
process runs; the proxy partitions, refuses, drops answers of requests the store applied, and
delivers what was held once a partition heals."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis

from tests.faults.clock import ShiftedClock, compiler_missing
from tests.faults.proxy import Fault, FaultProxy

CHILD = """
import sys, threading, time
from datetime import datetime, UTC
print(time.time(), time.monotonic(), datetime.now(UTC).timestamp(), flush=True)
threading.Event().wait(0.05)
time.sleep(0.05)
sys.stdin.readline()
print(time.time(), time.monotonic(), flush=True)
"""


@pytest.fixture
def clock(tmp_path) -> ShiftedClock:
    missing = compiler_missing()
    if missing:
        pytest.skip(missing)
    return ShiftedClock.build(tmp_path / "clock")


def test_the_wall_clock_moves_and_monotonic_time_and_sleeps_do_not(clock):
    clock.set(3600)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], env={**clock.env()}, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    wall, mono, now = (float(x) for x in child.stdout.readline().split())
    real_wall, real_mono = time.time(), time.monotonic()
    assert 3590 < wall - real_wall < 3610
    assert 3590 < now - real_wall < 3610
    assert abs(mono - real_mono) < 10
    clock.set(-600)
    child.stdin.write("\n")
    child.stdin.flush()
    stepped, _ = (float(x) for x in child.stdout.readline().split())
    assert -610 < stepped - time.time() < -590
    assert child.wait(timeout=30) == 0, child.stderr.read()


def redis_client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5, retry=None)


@pytest.fixture
def proxied(redis_server):
    with FaultProxy(redis_server.port) as proxy:
        yield proxy, redis_client(proxy.port), redis_client(redis_server.port)


def test_pass_and_refuse(proxied):
    proxy, through, _direct = proxied
    assert through.set("k", "1") and through.get("k") == b"1"
    proxy.set(Fault.REFUSE)
    with pytest.raises(redis.ConnectionError):
        through.get("k")
    proxy.set(Fault.PASS)
    assert through.get("k") == b"1"


def test_a_dropped_answer_hides_a_write_that_happened(proxied):
    proxy, through, direct = proxied
    through.ping()  # connected first: the connection's handshake answers are not the test
    proxy.set(Fault.DROP_RESPONSES, fraction=1.0)
    with pytest.raises(redis.TimeoutError):
        through.set("applied", "yes")
    assert direct.get("applied") == b"yes"
    assert proxy.dropped_answers == 1


def test_a_request_sent_into_a_partition_is_applied_when_it_heals(proxied):
    proxy, through, direct = proxied
    through.ping()
    proxy.set(Fault.PARTITION)
    with pytest.raises(redis.TimeoutError):
        through.set("late", "arrives")
    assert direct.get("late") is None
    proxy.set(Fault.PASS)
    deadline = time.monotonic() + 10
    while direct.get("late") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert direct.get("late") == b"arrives"


def test_delay_holds_answers_back(proxied):
    proxy, through, _direct = proxied
    proxy.set(Fault.DELAY, delay_seconds=2.0)
    with pytest.raises(redis.TimeoutError):
        through.get("anything")
