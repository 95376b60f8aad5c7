"""Races on the real stores: participants with their own clients acting at the same moment.

Threads released together by a barrier send their requests concurrently (the GIL is let go
while a request is on the wire); the store's conditional write is what keeps them apart.

DynamoDB races run on dynalite, not moto: moto's server applies concurrent conditional updates
of one item without locking (its FAQ says it is not concurrency-safe), and these very tests
see two winners on it. Real DynamoDB and dynalite serialise writes per item.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.lease import Lease, Role
from beat_handover.beat_lock.record import ClaimOutcome
from beat_handover.beat_lock.timings import LeaseTimings

pytestmark = pytest.mark.integration

TIMINGS = LeaseTimings(lease_seconds=10, safe_seconds=8, renew_seconds=2, poll_seconds=1)
ROUNDS = 15
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["dynalite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def race(*actions):
    """Run ``actions`` at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(actions))

    def run(action):
        barrier.wait()
        return action()

    with ThreadPoolExecutor(len(actions)) as pool:
        return list(pool.map(run, actions))


def test_two_participants_racing_from_cold_exactly_one_wins(make_store, lock_name, paas, ecs):
    stores = {paas: make_store(TIMINGS), ecs: make_store(TIMINGS)}
    for round_ in range(ROUNDS):
        name = f"{lock_name}-{round_}"
        leases = [Lease(store, name, who, TIMINGS) for who, store in stores.items()]
        race(*(lease.step for lease in leases))
        assert sorted(lease.role.value for lease in leases) == ["leader", "standby"], round_
        winner = next(lease for lease in leases if lease.role is Role.LEADER)
        record = winner.read()
        assert (winner.token, record.token, record.holder) == (1, 1, winner.identity)


def test_racing_for_a_released_lease_raises_the_token_by_exactly_one(
    make_store, lock_name, paas, ecs
):
    stores = {paas: make_store(TIMINGS), ecs: make_store(TIMINGS)}
    token = 0
    for round_ in range(ROUNDS):
        leases = [Lease(store, lock_name, who, TIMINGS) for who, store in stores.items()]
        race(*(lease.step for lease in leases))
        winners = [lease for lease in leases if lease.role is Role.LEADER]
        assert len(winners) == 1, round_
        assert winners[0].token == token + 1
        token = winners[0].token
        winners[0].release()
    assert stores[paas].read(lock_name).token == ROUNDS


def test_the_same_slot_is_never_claimed_twice_across_a_handover(make_store, lock_name, paas, ecs):
    """Three threads of the old holder and three of the new one claim the same slots of two
    entries while the lease is handed over under them."""
    old_store, new_store = make_store(TIMINGS), make_store(TIMINGS)
    assert old_store.acquire(lock_name, paas, expected_version=None, new_version="v1") == 1
    slots = [START + timedelta(minutes=i) for i in range(30)]
    entries = ("letters", "invoices")
    assert old_store.fence(lock_name, entries, identity=paas, token=1, everything=True) == {}
    outcomes: list[tuple[str, datetime, str, ClaimOutcome]] = []
    old_claimed_some = threading.Event()

    def claimer(store, identity, token):
        def run():
            for slot in slots:
                for entry in entries:
                    result = store.claim(
                        lock_name,
                        entry,
                        slot,
                        identity=identity,
                        token=token,
                        claim_id=new_version(),
                    )
                    outcomes.append((entry, slot, identity.environment, result.outcome))
                    if result.claimed and identity is paas and slot >= slots[3]:
                        old_claimed_some.set()

        return run

    def hand_over():
        old_claimed_some.wait(timeout=30)
        new_store.pin(lock_name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
        assert new_store.acquire(lock_name, ecs, expected_version=None, new_version="v2") == 3
        assert new_store.fence(lock_name, entries, identity=ecs, token=3, everything=True)

    race(*[claimer(old_store, paas, 1)] * 3, *[claimer(new_store, ecs, 3)] * 3, hand_over)

    claimed = Counter(
        (entry, slot) for entry, slot, _, outcome in outcomes if outcome is ClaimOutcome.CLAIMED
    )
    assert max(claimed.values()) == 1
    last_claims = new_store.last_claims(lock_name)
    for entry in entries:
        by = {
            env: [
                slot
                for e, slot, env_, outcome in outcomes
                if e == entry and env_ == env and outcome is ClaimOutcome.CLAIMED
            ]
            for env in ("paas", "ecs")
        }
        assert by["paas"] and by["ecs"], "the handover must fall between the claims"
        assert max(by["paas"]) < min(by["ecs"])
        last = last_claims[entry]
        assert (last.runs, last.slot, last.token, last.environment) == (
            len(by["paas"]) + len(by["ecs"]),
            slots[-1],
            3,
            "ecs",
        )


def test_concurrent_claims_of_one_holder_send_each_slot_once(make_store, lock_name, paas):
    stores = [make_store(TIMINGS) for _ in range(4)]
    stores[0].acquire(lock_name, paas, expected_version=None, new_version="v1")
    stores[0].fence(lock_name, ["letters"], identity=paas, token=1, everything=True)
    for minute in range(ROUNDS):
        slot = START + timedelta(minutes=minute)
        results = race(
            *(
                (
                    lambda store=store, slot=slot: store.claim(
                        lock_name, "letters", slot, identity=paas, token=1, claim_id=new_version()
                    )
                )
                for store in stores
            )
        )
        outcomes = Counter(result.outcome for result in results)
        assert outcomes == {ClaimOutcome.CLAIMED: 1, ClaimOutcome.ALREADY_CLAIMED: 3}, minute
    assert stores[0].read_claim(lock_name, "letters").runs == ROUNDS


def test_a_former_holders_claims_are_refused_once_the_new_leader_has_fenced(
    make_store, lock_name, paas, ecs
):
    """The proof of fencing under concurrency. Three threads of the old holder claim the same
    slots of three entries, and a fourth keeps fencing an entry new to its schedule and claiming
    it, while the lease is handed over and the new leader fences. No claim of the old holder
    that started after the new leader's fence returned is accepted, and the fence reports, for
    each entry, exactly the old holder's last accepted claim."""
    old_store, new_store = make_store(TIMINGS), make_store(TIMINGS)
    old = old_store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    entries = ["letters", "invoices", "reminders"]
    assert old_store.fence(lock_name, entries, identity=paas, token=old, everything=True) == {}
    outcomes: list[tuple[str, int, float, ClaimOutcome]] = []  # entry, minute, started, outcome
    old_claimed_some = threading.Event()
    stop = threading.Event()
    fenced: dict = {}

    def claim(entry: str, minute: int) -> None:
        started = time.monotonic()
        result = old_store.claim(
            lock_name,
            entry,
            START + timedelta(minutes=minute),
            identity=paas,
            token=old,
            claim_id=new_version(),
        )
        outcomes.append((entry, minute, started, result.outcome))
        if result.claimed and minute >= 3:
            old_claimed_some.set()

    def old_claimer():
        for minute in range(10_000):
            if stop.is_set():
                return
            for entry in entries:
                claim(entry, minute)

    def old_newcomer():
        for minute in range(10_000):
            if stop.is_set():
                return
            found = old_store.fence(lock_name, ["late"], identity=paas, token=old, everything=False)
            if found is not None:
                claim("late", minute)

    def hand_over():
        assert old_claimed_some.wait(timeout=30)
        new_store.pin(lock_name, "ecs", expected_token=old, new_version="p1", end_tenure=True)
        new = new_store.acquire(lock_name, ecs, expected_version=None, new_version="v2")
        fenced.update(new_store.fence(lock_name, entries, identity=ecs, token=new, everything=True))
        fenced["at"] = time.monotonic()
        time.sleep(0.5)  # the old holder claims on meanwhile
        stop.set()

    race(old_claimer, old_claimer, old_claimer, old_newcomer, hand_over)

    after = [outcome for _, _, started, outcome in outcomes if started > fenced["at"]]
    assert after and set(after) == {ClaimOutcome.LEASE_LOST}
    for entry in [*entries, "late"]:
        accepted = [m for e, m, _, o in outcomes if e == entry and o is ClaimOutcome.CLAIMED]
        reported = fenced.get(entry)
        assert (reported.slot if reported else None) == (
            START + timedelta(minutes=max(accepted)) if accepted else None
        ), entry
