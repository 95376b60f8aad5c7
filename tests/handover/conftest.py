"""Fixtures of the handover tests: a lock on a real store (redis-server, or DynamoDB on the moto
server) and in-process participants (real ``Lease`` objects stepped by a ``LeaseKeeper``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.errors import CorruptRecord
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease, LeaseKeeper
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings

# Short leases, as in every process-level test: a standby notices a free lease within 0.2 s.
TIMINGS = LeaseTimings(lease_seconds=2.0, renew_seconds=0.4, safe_seconds=1.5, poll_seconds=0.2)


@dataclass
class Lock:
    """One named lock on one store, and the participants started on it."""

    url: str
    name: str
    store: LeaseStore
    keepers: list[LeaseKeeper] = field(default_factory=list)

    def join(
        self, environment: str, timings: LeaseTimings = TIMINGS, store: LeaseStore | None = None
    ) -> Lease:
        """A participant of ``environment`` with its own store client (or ``store``), stepped
        in the background like a beat process would."""
        store = store or open_store(parse_lock_url(self.url), timings)
        lease = Lease(store, self.name, Identity.new(environment), timings)
        keeper = LeaseKeeper(lease)
        keeper.start()
        self.keepers.append(keeper)
        return lease

    def stuck(self, environment: str, *, ttl_seconds: float = 60.0) -> Identity:
        """A participant that announced itself and then hung: a live heartbeat, nothing else."""
        identity = Identity.new(environment)
        self.store.heartbeat(
            self.name, identity, role="standby", ttl_seconds=ttl_seconds, sequence=1
        )
        return identity

    def read(self) -> LeaseRecord | None:
        return self.store.read(self.name)

    def wait_for(
        self, condition: Callable[[LeaseRecord | None], bool], timeout_seconds: float = 15.0
    ) -> LeaseRecord | None:
        deadline = time.monotonic() + timeout_seconds
        record = None
        while True:
            try:
                record = self.read()
                if condition(record):
                    return record
            except CorruptRecord:
                # The moto server applies an UpdateItem field by field, so a read racing the
                # write that creates an item can see it half-made; DynamoDB itself never shows
                # that. Only this waiting helper tolerates it.
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"lock {self.name} never reached the state; last {record}")
            time.sleep(0.05)

    def wait_leader(self, environment: str) -> LeaseRecord | None:
        return self.wait_for(
            lambda r: (
                r is not None
                and r.holder is not None
                and r.holder.environment == environment
                and r.renewals >= 1
            )
        )


@pytest.fixture(params=["redis"])
def lock(request, unique_name) -> Iterator[Lock]:
    """A fresh lock; tests that should also run on DynamoDB parametrize ``lock`` indirectly."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
    else:
        request.getfixturevalue("moto_server")
        create_table(unique_name, "eu-west-2")
        url = f"dynamodb://{unique_name}?region=eu-west-2"
    lock = Lock(url, unique_name, open_store(parse_lock_url(url), TIMINGS))
    yield lock
    for keeper in lock.keepers:
        keeper.stop(release=False, timeout=5)


class CountingReads:
    """A real store client that counts the lease reads made through it."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def read(self, name: str, *, consistent: bool = True) -> LeaseRecord | None:
        self.reads += 1
        return self.store.read(name, consistent=consistent)


@pytest.fixture
def paas_leads(lock: Lock) -> Lease:
    """paas leading (renewed at least once), before anything else joins."""
    lease = lock.join("paas")
    lock.wait_leader("paas")
    return lease
