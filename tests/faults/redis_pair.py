"""A Redis primary with a replica, for failover tests and the fault benchmark: the replica is
fed through a proxy the caller can cut, and clients reach "the primary" through another proxy
that a failover points at the promoted replica.

:func:`claims_across_failover` is the scenario: paas leads and claims two slots, the second
after the replica stopped receiving; the replica is promoted with ``REPLICAOF NO ONE``; ecs
takes over there and claims its next slot. It returns what a beat would have published (every
claim answered CLAIMED), in order.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import redis

from beat_handover.beat_lock.errors import StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import ClaimResult
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.handover.testing.processes import free_port
from tests.faults.proxy import Fault, FaultProxy

T = TypeVar("T")
SLOT = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
TIMINGS = LeaseTimings(lease_seconds=2.0, renew_seconds=0.4, safe_seconds=1.5, poll_seconds=0.2)


@dataclass
class Pair:
    """A primary, a replica fed through ``link`` (a proxy the test can cut), and ``service``,
    the address clients use (moved to the replica by :meth:`fail_over`)."""

    primary: int
    replica: int
    link: FaultProxy
    service: FaultProxy

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.service.port}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def replicated(self) -> None:
        """Until the replica has every write the primary acknowledged so far."""
        assert self.client(self.primary).wait(1, 5000) == 1

    def fail_over(self) -> None:
        """Promote the replica with what it has, point the service address at it, and make the
        old primary its replica (as Sentinel does: it drops what the new primary lacks)."""
        self.client(self.replica).execute_command("REPLICAOF", "NO", "ONE")
        self.service.retarget(self.replica)
        self.client(self.primary).execute_command("REPLICAOF", "127.0.0.1", str(self.replica))


def retried(call: Callable[[], T]) -> T:
    """``call()`` asked again while the store does not answer, as a beat does."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return call()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store never answered"
            time.sleep(0.1)


def redis_server(directory: Path, port: int, *extra: str) -> subprocess.Popen:
    directory.mkdir()
    server = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--repl-diskless-sync-delay", "0", "--dir", str(directory), *extra),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(port=port).ping()
            return server
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"redis-server on {port} did not start"
            time.sleep(0.05)


@contextmanager
def redis_pair(directory: Path) -> Iterator[Pair]:
    """A primary and its replica, replicating, both killed on leaving."""
    primary, replica = free_port(), free_port()
    servers = [redis_server(directory / "primary", primary)]
    try:
        with FaultProxy(primary) as link, FaultProxy(primary) as service:
            servers.append(
                redis_server(
                    directory / "replica", replica, "--replicaof", "127.0.0.1", str(link.port)
                )
            )
            deadline = time.monotonic() + 30
            while redis.Redis(port=replica).info("replication")["master_link_status"] != "up":
                assert time.monotonic() < deadline, "the replica never caught up"
                time.sleep(0.05)
            yield Pair(primary, replica, link, service)
    finally:
        for server in servers:
            server.kill()
            server.wait()


def claims_across_failover(pair: Pair, name: str, wait_replicas: int) -> list[tuple[str, datetime]]:
    """The scenario of this module's docstring; returns (environment, slot) of every claim a
    beat would have published, in order."""
    location = replace(
        parse_lock_url(pair.url), wait_replicas=wait_replicas, wait_timeout_seconds=0.3
    )
    paas_store, ecs_store = open_store(location, TIMINGS), open_store(location, TIMINGS)
    paas, ecs = Identity.new("paas"), Identity.new("ecs")
    published: list[tuple[str, datetime]] = []

    def claim(
        store: LeaseStore, identity: Identity, token: int, slot: datetime, *, again: bool
    ) -> None:
        """A beat's claim: asked again while unanswered (``again``, the replica reachable: a
        loaded machine can miss WAIT's timeout), published only once answered CLAIMED."""

        def ask() -> ClaimResult:
            return store.claim(
                name, "letters", slot, identity=identity, token=token, claim_id=f"{identity}{slot}"
            )

        try:
            result = retried(ask) if again else ask()
        except StoreUnavailable:
            return  # unanswered: a beat asks again later and publishes nothing meanwhile
        if result.claimed:
            published.append((identity.environment, slot))

    try:
        token = retried(
            lambda: paas_store.acquire(name, paas, expected_version=None, new_version="v1")
        )
        retried(
            lambda: paas_store.fence(name, ["letters"], identity=paas, token=token, everything=True)
        )
        claim(paas_store, paas, token, SLOT, again=True)
        pair.replicated()
        pair.link.set(Fault.PARTITION)  # the replica stops receiving; the primary does not know
        claim(paas_store, paas, token, SLOT + timedelta(minutes=1), again=False)
        pair.fail_over()
        # paas is gone with the old primary; ecs takes the lease on the promoted replica.
        record = ecs_store.read(name)
        new = retried(
            lambda: ecs_store.acquire(name, ecs, expected_version=record.version, new_version="v2")
        )
        fenced = retried(
            lambda: ecs_store.fence(name, ["letters"], identity=ecs, token=new, everything=True)
        )
        claim(ecs_store, ecs, new, fenced["letters"].slot + timedelta(minutes=1), again=True)
    finally:
        paas_store.close()
        ecs_store.close()
    return published
