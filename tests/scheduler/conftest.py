"""Fixtures of the scheduler's process tests: a lock store on either backend, a broker, and the
celery processes of one test (all killed at teardown)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from tests.harness import Processes

APP = "tests.scheduler.app"
# Short leases so takeovers happen in seconds (lease > safe > renew; poll < lease).
TIMINGS = {
    "BEAT_LOCK_LEASE_SECONDS": "2",
    "BEAT_LOCK_RENEW_SECONDS": "0.4",
    "BEAT_LOCK_SAFE_SECONDS": "1.5",
    "BEAT_LOCK_POLL_SECONDS": "0.2",
}
LEASE_SECONDS = 2.0
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Lock:
    """Where a test's lock lives."""

    backend: str
    url: str
    name: str

    def store(self) -> LeaseStore:
        return open_store(parse_lock_url(self.url))

    def env(self) -> dict[str, str]:
        return {"BEAT_LOCK_URL": self.url, "BEAT_LOCK_NAME": self.name}


@pytest.fixture(params=["redis", "dynamodb"])
def lock(request: pytest.FixtureRequest, redis_url: str, unique_name: str) -> Lock:
    """A fresh lock on the Redis backend (the test redis-server) or on DynamoDB (moto server)."""
    if request.param == "redis":
        return Lock("redis", redis_url, unique_name)
    request.getfixturevalue("moto_server")
    create_table(unique_name, "eu-west-2")
    return Lock("dynamodb", f"dynamodb://{unique_name}?region=eu-west-2", unique_name)


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """The test app's broker: another database of the test redis-server."""
    return redis_url.rsplit("/", 1)[0] + "/1"


@pytest.fixture
def processes(tmp_path, broker_url: str, lock: Lock) -> Iterator[Processes]:
    with Processes(
        tmp_path, APP, {"TEST_BROKER_URL": broker_url, **lock.env(), **TIMINGS}
    ) as procs:
        yield procs


@pytest.fixture
def statsd_listener() -> Iterator[socket.socket]:
    """A UDP socket on the loopback interface, as a statsd server listens (5 s receive
    timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock
