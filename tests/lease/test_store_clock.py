"""This host's wall clock against the store's, on both backends' real servers (moto's Date header,
redis-server's TIME), read on the answers of requests the lease makes anyway; and the lease's
rules on it: a skewed participant neither acquires nor claims, a leader whose clock steps away
steps down and releases, and no slot ahead of the store's time is claimed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from beat_handover.beat_lock.dynamodb import DynamoDBStore
from beat_handover.beat_lock.errors import StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.lease import Lease, Role
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import ClaimOutcome
from beat_handover.beat_lock.redis_store import RedisStore
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.store_clock import ClockSkew, Sent, StoreClock
from beat_handover.beat_lock.timings import LeaseTimings
from tests.lease.doubles import FakeClock, FaultyStore

TIMINGS = LeaseTimings()  # production durations: the bound is the default 5 s
MAX = TIMINGS.max_clock_skew_seconds


class Wall:
    """This host's wall clock, ``shift`` seconds from the real one (an NTP step moves it)."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def __call__(self) -> float:
        return time.time() + self.shift

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)


@pytest.fixture
def shifted(backend: str, store_url: str) -> Callable[[Wall], LeaseStore]:
    """Stores on the test's backend whose wall clock is the given Wall."""
    opened: list[LeaseStore] = []

    def make(wall: Wall) -> LeaseStore:
        location = parse_lock_url(store_url)
        clock = StoreClock(wall=wall)
        if backend == "dynamodb":
            store: LeaseStore = DynamoDBStore(location, TIMINGS, clock=clock)
        else:
            store = RedisStore(location, TIMINGS, clock=clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def skew_of(store: LeaseStore) -> ClockSkew:
    skew = store.store_clock().skew(MAX)
    assert skew is not None, "no answer carried the store's time"
    return skew


# -- the measurement ---------------------------------------------------------------------------


def test_a_correct_clock_is_within_the_uncertainty_of_a_poll(shifted, backend, lock_name):
    store = shifted(Wall())
    assert store.store_clock().skew(MAX) is None  # nothing asked yet: nothing known
    store.read(lock_name)
    skew = skew_of(store)
    assert abs(skew.seconds) <= skew.uncertainty_seconds + 0.05, skew
    assert not skew.exceeded
    if backend == "dynamodb":
        assert skew.uncertainty_seconds >= 0.5  # a Date header names whole seconds
    else:
        assert skew.uncertainty_seconds < 0.5  # TIME has microseconds: the round trip only


@pytest.mark.parametrize("shift", [3600.0, -600.0])
def test_a_shifted_clock_is_measured_on_a_poll(shifted, lock_name, shift):
    store = shifted(Wall(shift))
    store.read(lock_name)
    skew = skew_of(store)
    assert abs(skew.seconds - shift) <= skew.uncertainty_seconds + 0.05, skew
    assert skew.exceeded
    way = "ahead of" if shift > 0 else "behind"
    assert f"s {way} the store's clock" in skew.describe()


def test_renewals_claims_and_heartbeats_carry_the_store_time(shifted, lock_name, paas):
    """Each of the lease's own requests, as the first request of a store, gives a reading."""
    first = shifted(Wall())
    token = first.acquire(lock_name, paas, expected_version=None, new_version=new_version())
    assert token is not None
    assert first.fence(lock_name, ["e"], identity=paas, token=token, everything=True) == {}
    slot = datetime.now(UTC).replace(microsecond=0)
    requests = {
        "renew": lambda store: store.renew(lock_name, paas, token, new_version=new_version()),
        "claim": lambda store: store.claim(
            lock_name, "e", slot, identity=paas, token=token, claim_id=new_version()
        ),
        "heartbeat": lambda store: store.heartbeat(
            lock_name, paas, role="leader", ttl_seconds=30, sequence=1
        ),
    }
    for what, request in requests.items():
        store = shifted(Wall(-600))
        request(store)
        skew = skew_of(store)
        assert abs(skew.seconds + 600) <= skew.uncertainty_seconds + 0.05, (what, skew)


def test_a_skewed_hosts_heartbeat_lives_by_the_stores_clock(shifted, lock_name, paas):
    """A heartbeat ten minutes behind expires by the store's time, not its own: other hosts
    still see it (and its skew) in ``handover status``."""
    skewed = shifted(Wall(-600))
    skewed.read(lock_name)
    skewed.heartbeat(lock_name, paas, role="standby", ttl_seconds=30, sequence=1)
    seen = shifted(Wall()).participants(lock_name)
    assert [p.identity for p in seen] == [paas]


def test_a_step_of_the_wall_clock_shows_without_another_answer():
    wall, mono = [1000.0], [50.0]
    clock = StoreClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    sent = clock.sent()
    mono[0] += 0.2
    wall[0] += 0.2
    clock.observe_http_date(sent, "Thu, 01 Jan 1970 00:16:40 GMT")  # 1000 s: [1000, 1001)
    skew = clock.skew(5)
    assert (skew.seconds, skew.uncertainty_seconds) == pytest.approx((1000.2 - 1000.6, 0.6))
    wall[0] += 3600  # stepped, no request since
    mono[0] += 1.0
    earliest, latest = clock.store_time()
    assert (earliest, latest) == pytest.approx((1001.0, 1002.2))
    assert clock.skew(5).seconds == pytest.approx(4600.2 - 1001.6)  # wall now - middle
    assert clock.skew(5).exceeded


def test_an_unreadable_date_header_is_no_reading():
    clock = StoreClock()
    for header in (None, "", "yesterday at noon"):
        clock.observe_http_date(Sent(0.0, 0.0), header)
    assert clock.store_time() is None


# -- the lease's rules -------------------------------------------------------------------------


def leader(
    store: LeaseStore, name: str, identity: Identity, clock: FakeClock | None = None
) -> Lease:
    lease = Lease(store, name, identity, TIMINGS, clock=clock or FakeClock())
    lease.step()  # acquires
    lease.step()  # renews at once
    assert lease.role is Role.LEADER
    assert lease.fence(["e"], everything=True) is not None
    return lease


def test_a_skewed_standby_does_not_acquire_a_free_lease(shifted, lock_name, paas, caplog):
    wall, steps = Wall(3600), FakeClock()
    store = shifted(wall)
    lease = Lease(store, lock_name, paas, TIMINGS, clock=steps)
    with caplog.at_level(logging.WARNING, logger="beat_handover.beat_lock.lease"):
        lease.step()
        steps.advance(TIMINGS.poll_seconds)
        lease.step()
        assert lease.role is Role.STANDBY
        assert store.read(lock_name) is None  # never acquired
        assert "lease clock skewed" in caplog.text
        assert "s ahead of the store's clock" in caplog.text
        (beat,) = shifted(Wall()).participants(lock_name)
        assert beat.detail["clock_skewed"] is True
        assert abs(beat.detail["clock_skew_seconds"] - 3600) < 2

        wall.shift = 0  # corrected: the next poll acquires, the heartbeat shows it at once
        steps.advance(TIMINGS.poll_seconds)
        lease.step()
    assert lease.role is Role.LEADER
    assert "lease clock within bounds again" in caplog.text
    (beat,) = shifted(Wall()).participants(lock_name)
    assert beat.detail["clock_skewed"] is False


@pytest.mark.parametrize("shift", [3600.0, -600.0])
def test_a_leader_whose_clock_steps_steps_down_and_releases_at_its_next_claim(
    shifted, lock_name, paas, shift
):
    wall = Wall()
    store = shifted(wall)
    lease = leader(store, lock_name, paas)
    first = wall.now().replace(microsecond=0)
    assert lease.claim("e", first).claimed
    wall.shift = shift
    slot = wall.now().replace(microsecond=0)
    result = lease.claim("e", slot)
    assert result.outcome is ClaimOutcome.LEASE_LOST
    assert "wall clock is" in result.reason
    assert lease.role is Role.STANDBY
    record = store.read(lock_name)
    assert record.holder is None  # released: a correct standby acquires it within a poll
    assert store.read_claim(lock_name, "e").slot == first  # nothing claimed since


def test_a_slot_ahead_of_the_stores_time_is_never_claimed(shifted, lock_name, paas):
    """Even with a clock judged correct at its last reading: the slot itself is compared with
    the store's time, tracked on the monotonic clock."""
    wall = Wall()
    store = shifted(wall)
    lease = leader(store, lock_name, paas)
    ahead = wall.now() + timedelta(seconds=MAX + 2)
    result = lease.claim("e", ahead)
    assert result.outcome is ClaimOutcome.LEASE_LOST
    assert "s ahead of the store's clock" in result.reason
    assert store.read_claim(lock_name, "e") is None
    assert store.read(lock_name).holder is None


def test_a_leader_renewing_with_a_skewed_clock_steps_down(shifted, lock_name, paas, caplog):
    wall, steps = Wall(), FakeClock()
    store = shifted(wall)
    lease = leader(store, lock_name, paas, clock=steps)
    wall.shift = -600
    steps.advance(TIMINGS.renew_seconds)
    with caplog.at_level(logging.INFO, logger="beat_handover.beat_lock.lease"):
        lease.step()
    assert lease.role is Role.STANDBY
    assert store.read(lock_name).holder is None
    assert "lease stopped leading" in caplog.text and "s behind the store's clock" in caplog.text


def test_a_claim_whose_answer_was_lost_is_resolved_even_after_the_clock_stepped(
    shifted, lock_name, paas
):
    """Asking again with the same claim id only tells whether it was stored (judged when it was
    sent): the stored run is ours and is published, not refused for the clock."""
    wall = Wall()
    faulty = FaultyStore(shifted(wall))
    lease = leader(faulty, lock_name, paas)
    slot = wall.now().replace(microsecond=0)
    faulty.fail["claim"] = "after"
    with pytest.raises(StoreUnavailable):
        lease.claim("e", slot)
    del faulty.fail["claim"]
    wall.shift = 3600
    assert lease.claim("e", slot).claimed
    assert lease.claim("e", slot + timedelta(seconds=1)).outcome is ClaimOutcome.LEASE_LOST


def test_answers_without_a_date_leave_the_clock_unchecked_and_say_so(
    moto_server, lock_table, lock_name, paas, caplog
):
    """A proxy that drops the Date header: no reading, the lease works, one WARNING says the
    clock goes unchecked."""
    store = DynamoDBStore(parse_lock_url(f"dynamodb://{lock_table}?region=eu-west-2"), TIMINGS)

    def strip_date(parsed, **_):
        parsed.get("ResponseMetadata", {}).get("HTTPHeaders", {}).pop("date", None)

    store.client.meta.events.register("after-call.dynamodb", strip_date)
    try:
        with caplog.at_level(logging.WARNING, logger="beat_handover.beat_lock.lease"):
            lease = leader(store, lock_name, paas)
            assert lease.claim("e", datetime.now(UTC).replace(microsecond=0)).claimed
        assert lease.clock_skew() is None
        assert caplog.text.count("lease store's answers carry no time") == 1
    finally:
        store.close()
