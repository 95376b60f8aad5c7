"""The lease state machine on a fake monotonic clock, against the real stores (both backends).

The clock is fake so that "a full lease duration" takes no time; the stores are real so that
every outcome is what DynamoDB (moto server) or redis-server decided.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from beat_handover.beat_lock.errors import CorruptRecord, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.lease import ANNOUNCED_POLL_SECONDS, Lease, Role
from beat_handover.beat_lock.record import Acked, ClaimOutcome
from beat_handover.beat_lock.timings import LeaseTimings
from tests.lease.doubles import FakeClock, FaultyStore

pytestmark = pytest.mark.integration

TIMINGS = LeaseTimings()  # production durations: 30 s lease, 20 s safe, 5 s renew, 1 s poll
SLOT = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list:
    return []


@pytest.fixture
def make_lease(make_store, lock_name, clock, events):
    def make(identity, *, store=None, clock=clock):
        return Lease(
            store or make_store(),
            lock_name,
            identity,
            TIMINGS,
            clock=clock,
            on_start_leading=lambda token: events.append((str(identity), "start", token)),
            on_stop_leading=lambda reason: events.append((str(identity), "stop", reason)),
            heartbeat_detail={"hostname": "test"},
        )

    return make


def test_first_participant_acquires_with_token_1_and_renews_at_once(make_lease, paas, events):
    lease = make_lease(paas)
    assert lease.role is Role.STANDBY and lease.token is None and not lease.valid()
    assert lease.step() == 0.0  # acquired: the first renewal is due at once
    assert (lease.role, lease.token, lease.valid()) == (Role.LEADER, 1, True)
    assert events == [(str(paas), "start", 1)]
    assert lease.read().renewals == 0
    assert lease.step() == pytest.approx(TIMINGS.renew_seconds)
    record = lease.read()
    assert (record.holder, record.token, record.renewals) == (paas, 1, 1)


def test_valid_is_timed_from_before_the_renewal_was_sent(make_store, make_lease, paas, clock):
    faulty = FaultyStore(make_store())
    faulty.during["renew"] = lambda: clock.advance(3.0)  # the request takes 3 s
    lease = make_lease(paas, store=faulty)
    lease.step()
    lease.step()
    assert lease.safe_remaining() == pytest.approx(TIMINGS.safe_seconds - 3.0)
    clock.advance(TIMINGS.safe_seconds - 3.0 - 0.001)
    assert lease.valid()
    clock.advance(0.002)
    assert not lease.valid() and lease.safe_remaining() == 0.0
    calls = len(faulty.calls)
    result = lease.claim("letters", SLOT)
    assert result.outcome is ClaimOutcome.LEASE_LOST
    assert "safe time" in result.reason
    assert len(faulty.calls) == calls  # refused without asking the store


def test_standby_takes_over_only_after_a_full_lease_of_unchanged_version(
    make_lease, paas, ecs, events
):
    holder_clock, standby_clock = FakeClock(), FakeClock(50_000.0)  # unrelated clocks
    holder = make_lease(paas, clock=holder_clock)
    standby = make_lease(ecs, clock=standby_clock)
    holder.step()
    holder.step()
    standby.step()
    assert standby.role is Role.STANDBY
    standby_clock.advance(TIMINGS.lease_seconds - 0.01)
    standby.step()
    assert standby.role is Role.STANDBY  # the holder stopped renewing, but not for a full lease
    standby_clock.advance(TIMINGS.poll_seconds)
    standby.step()
    assert (standby.role, standby.token) == (Role.LEADER, 2)
    holder_clock.advance(TIMINGS.renew_seconds)
    holder.step()  # its renewal is refused: the lease is no longer its own
    assert (holder.role, holder.token) == (Role.STANDBY, None)
    assert events[-2:] == [
        (str(ecs), "start", 2),
        (
            str(paas),
            "stop",
            "renewal refused: the lease was taken over, handed over or pinned "
            "to another environment",
        ),
    ]


def test_renewals_keep_a_standby_waiting_forever(make_lease, paas, ecs, clock):
    holder = make_lease(paas)
    standby = make_lease(ecs)
    holder.step()
    for _ in range(8):  # 8 renewals: 40 s, more than a full lease
        holder.step()
        standby.step()
        clock.advance(TIMINGS.renew_seconds)
    assert (holder.role, holder.token, holder.valid()) == (Role.LEADER, 1, True)
    assert standby.role is Role.STANDBY


def test_release_lets_the_other_acquire_at_its_next_poll(make_lease, paas, ecs, events, clock):
    holder = make_lease(paas)
    standby = make_lease(ecs)
    holder.step()
    standby.step()
    assert {p.identity for p in holder.store.participants(holder.name)} == {paas, ecs}
    holder.release()
    assert (holder.role, holder.token, holder.valid()) == (Role.STOPPED, None, False)
    assert events[-1] == (str(paas), "stop", "released")
    clock.advance(TIMINGS.poll_seconds)
    standby.step()  # no lease duration to wait: the record says nobody holds it
    assert (standby.role, standby.token) == (Role.LEADER, 2)
    assert [p.identity for p in holder.store.participants(holder.name)] == [ecs]


def test_pinned_elsewhere_a_participant_waits_the_whole_fallback(
    make_store, make_lease, paas, ecs, clock
):
    lease = make_lease(paas)
    pinned = make_store().pin(
        lease.name, "ecs", expected_token=None, new_version="v1", end_tenure=True
    )
    assert (pinned.pin, pinned.token, pinned.holder) == ("ecs", 0, None)
    lease.step()
    for _ in range(int(TIMINGS.fallback_seconds / TIMINGS.lease_seconds) - 1):
        clock.advance(TIMINGS.lease_seconds)
        lease.step()
    clock.advance(TIMINGS.lease_seconds - TIMINGS.poll_seconds)
    lease.step()  # fallback_seconds less one poll: the pin still holds
    assert lease.role is Role.STANDBY
    assert lease.read().holder is None
    other = make_lease(ecs)
    other.step()
    assert (other.role, other.token) == (Role.LEADER, 1)


def test_a_pin_to_an_environment_nobody_renews_falls_back_and_moves(
    make_store, make_lease, paas, ecs, clock, events
):
    dead = make_lease(ecs)
    dead.step()
    assert dead.token == 1
    survivor = make_lease(paas)
    survivor.step()  # sees ecs holding a lease pinned to ecs; the ecs beat then dies
    make_store().pin(survivor.name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    clock.advance(TIMINGS.poll_seconds)
    survivor.step()  # the pinned version, first seen now
    clock.advance(TIMINGS.fallback_seconds - TIMINGS.poll_seconds)
    survivor.step()
    assert survivor.role is Role.STANDBY  # one poll short of the fallback
    clock.advance(TIMINGS.poll_seconds)
    survivor.step()
    assert (survivor.role, survivor.token) == (Role.LEADER, 2)
    record = survivor.read()
    assert (record.pin, record.holder) == ("paas", paas)
    assert events[-1] == (str(paas), "start", 2)
    fallback = survivor.store.events(survivor.name)[0]
    assert (fallback.kind, fallback.result) == ("fallback", "taken")
    assert (fallback.detail["from"], fallback.detail["to"]) == ("ecs", "paas")
    assert dead.claim("letters", SLOT).outcome is ClaimOutcome.LEASE_LOST


def test_a_pinned_environment_that_keeps_renewing_is_never_displaced(make_lease, paas, ecs, clock):
    holder = make_lease(ecs)
    holder.step()
    holder.store.pin(holder.name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    other = make_lease(paas)
    elapsed = 0.0
    while elapsed < 3 * TIMINGS.fallback_seconds:
        holder.step()
        other.step()
        clock.advance(TIMINGS.renew_seconds)
        elapsed += TIMINGS.renew_seconds
    assert (holder.role, other.role) == (Role.LEADER, Role.STANDBY)
    assert holder.read().pin == "ecs"


def test_a_holder_outside_a_new_pin_loses_the_lease(
    make_store, make_lease, paas, ecs, clock, events
):
    holder = make_lease(paas)
    holder.step()
    assert holder.fence(["letters"], everything=True) == {}
    record = holder.read()
    pinned = make_store().pin(
        holder.name, "ecs", expected_token=record.token, new_version="p1", end_tenure=False
    )
    assert (pinned.pin, pinned.holder, pinned.token) == ("ecs", paas, 1)  # tenure not ended
    clock.advance(holder.step())  # the first renewal after the pin is refused
    assert holder.role is Role.STANDBY
    assert events[-1][1:] == (
        "stop",
        "renewal refused: the lease was taken over, handed over or pinned to another environment",
    )
    assert holder.claim("letters", SLOT).outcome is ClaimOutcome.LEASE_LOST
    assert holder.fence(["letters"], everything=True) is None
    clock.advance(TIMINGS.lease_seconds * 3)
    holder.step()
    holder.step()
    assert holder.role is Role.STANDBY


def test_a_fence_refused_by_the_store_drops_leadership(make_store, make_lease, paas, ecs, events):
    holder = make_lease(paas)
    holder.step()
    make_store().pin(holder.name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    assert holder.valid()  # its own clock cannot know yet
    assert holder.fence(["letters"], everything=True) is None
    assert holder.role is Role.STANDBY
    assert events[-1] == (str(paas), "stop", "fence refused: the lease is no longer ours")


def test_an_acquire_whose_answer_was_lost_is_ours_after_the_next_read(
    make_store, make_lease, paas, events, clock
):
    faulty = FaultyStore(make_store())
    faulty.fail["acquire"] = "after"
    lease = make_lease(paas, store=faulty)
    delay = lease.step()  # absorbed: the store wrote us as holder, we did not hear it
    assert lease.role is Role.STANDBY
    assert lease.read().holder == paas
    del faulty.fail["acquire"]
    clock.advance(delay)
    lease.step()
    assert (lease.role, lease.token, lease.valid()) == (Role.LEADER, 1, True)  # not token 2
    assert events == [(str(paas), "start", 1)]


def test_a_renewal_whose_answer_was_lost_keeps_the_lease(make_store, make_lease, paas, clock):
    faulty = FaultyStore(make_store())
    lease = make_lease(paas, store=faulty)
    lease.step()
    faulty.fail["renew"] = "after"
    delay = lease.step()
    assert delay == pytest.approx(min(TIMINGS.poll_seconds, TIMINGS.renew_seconds))
    del faulty.fail["renew"]
    clock.advance(delay)
    lease.step()
    assert (lease.role, lease.token, lease.read().renewals) == (Role.LEADER, 1, 2)


@pytest.fixture
def claim_unanswered(make_store, make_lease, paas):
    """Lead through a FaultyStore and try to claim SLOT; ``how`` the request fails: "after"
    (stored, answer lost) or "before" (never arrived). Returns the store and the lease."""

    def attempt(how: str):
        faulty = FaultyStore(make_store())
        lease = make_lease(paas, store=faulty)
        lease.step()
        lease.fence(["letters"], everything=True)
        faulty.fail["claim"] = how
        with pytest.raises(StoreUnavailable):
            lease.claim("letters", SLOT)
        del faulty.fail["claim"]
        return faulty, lease

    return attempt


def test_a_claim_whose_answer_was_lost_counts_once_when_retried(claim_unanswered):
    _, lease = claim_unanswered("after")
    result = lease.claim("letters", SLOT)
    assert result.outcome is ClaimOutcome.CLAIMED
    assert result.last.runs == 1
    again = lease.claim("letters", SLOT)  # a new attempt, not a retry: already sent
    assert again.outcome is ClaimOutcome.ALREADY_CLAIMED


def test_a_lost_claim_answer_is_resolved_by_reading_once_the_lease_lapsed(claim_unanswered, clock):
    _, lease = claim_unanswered("after")
    clock.advance(TIMINGS.safe_seconds)
    assert not lease.valid()
    result = lease.claim("letters", SLOT)
    assert (result.outcome, result.reason) == (
        ClaimOutcome.CLAIMED,
        "our earlier attempt stored it",
    )
    assert lease.claim("letters", SLOT).outcome is ClaimOutcome.LEASE_LOST


def test_a_dropped_claim_is_not_counted_as_claimed(claim_unanswered, clock, make_store, lock_name):
    faulty, lease = claim_unanswered("before")
    calls = len(faulty.calls)
    clock.advance(TIMINGS.safe_seconds)
    assert lease.claim("letters", SLOT).outcome is ClaimOutcome.LEASE_LOST
    assert faulty.calls[calls:] == ["read_claim"]  # the store was asked whether it had it
    assert make_store().last_claims(lock_name) == {}


def test_a_holder_cut_off_for_a_full_lease_steps_down_then_resumes_its_tenure(
    make_store, make_lease, paas, clock, events
):
    faulty = FaultyStore(make_store())
    lease = make_lease(paas, store=faulty)
    lease.step()
    lease.step()
    faulty.fail.update(renew="before", read="before", heartbeat="before")
    while lease.role is Role.LEADER:
        clock.advance(lease.step())
    assert events[-1] == (str(paas), "stop", f"no successful renewal for {TIMINGS.lease_seconds}s")
    faulty.fail.clear()
    lease.step()
    assert (lease.role, lease.token, lease.valid()) == (Role.LEADER, 1, True)
    assert events[-1] == (str(paas), "start", 1)


def test_unavailable_store_is_absorbed_but_a_corrupt_record_stops_the_step(
    make_store, make_lease, paas, write_raw_field, lock_name
):
    faulty = FaultyStore(make_store())
    faulty.fail["read"] = "before"
    lease = make_lease(paas, store=faulty)
    assert lease.step() == pytest.approx(TIMINGS.poll_seconds)
    faulty.fail.clear()
    lease.step()
    write_raw_field(lock_name, "token", "seven")
    with pytest.raises(CorruptRecord, match="field 'token' is 'seven', expected a whole number"):
        make_lease(paas).step()


def test_a_failing_callback_does_not_stop_the_lease(make_store, lock_name, paas, clock):
    def explode(_token: int) -> None:
        raise RuntimeError("callback bug")

    lease = Lease(make_store(), lock_name, paas, TIMINGS, clock=clock, on_start_leading=explode)
    lease.step()
    lease.step()
    assert lease.role is Role.LEADER and lease.read().renewals == 1


def test_claims_go_out_in_slot_order_only_while_leading(make_lease, paas, ecs, clock):
    holder = make_lease(paas)
    assert holder.claim("letters", SLOT).outcome is ClaimOutcome.LEASE_LOST  # not leading yet
    assert holder.fence(["letters"], everything=True) is None
    holder.step()
    assert holder.fence(["letters", "invoices"], everything=True) == {}
    assert holder.claim("letters", SLOT).outcome is ClaimOutcome.CLAIMED
    earlier = holder.claim("letters", SLOT - timedelta(hours=1))
    assert earlier.outcome is ClaimOutcome.ALREADY_CLAIMED
    assert earlier.last.slot == SLOT
    later = holder.claim("letters", SLOT + timedelta(hours=1))
    assert (later.outcome, later.last.runs, later.last.token, later.last.environment) == (
        ClaimOutcome.CLAIMED,
        2,
        1,
        "paas",
    )
    assert holder.claim("invoices", SLOT).outcome is ClaimOutcome.CLAIMED
    assert set(holder.store.last_claims(holder.name)) == {"letters", "invoices"}


def test_a_standby_polls_eventually_consistent_except_while_a_handover_is_announced(
    make_store, make_lease, lock_name, paas, ecs, clock
):
    holder = make_lease(paas)
    holder.step()
    faulty = FaultyStore(make_store())
    standby = make_lease(ecs, store=faulty)
    clock.advance(standby.step())
    clock.advance(standby.step())
    assert [kwargs for method, kwargs in faulty.seen if method == "read"] == [
        {"consistent": False}
    ] * 2
    make_store().announce(lock_name, "ecs", expected_token=1)
    clock.advance(standby.step())  # this read sees the announcement
    faulty.seen.clear()
    clock.advance(standby.step())
    assert [kwargs for method, kwargs in faulty.seen if method == "read"] == [{"consistent": True}]


def reads_in(lease, faulty, clock, seconds):
    """Step ``lease`` as its keeper would for ``seconds`` of the fake clock; how many times it
    asked the store for the lease record."""
    before = faulty.calls.count("read")
    end = clock() + seconds
    while clock() < end:
        clock.advance(lease.step())
    return faulty.calls.count("read") - before


@pytest.fixture
def announced(make_store, make_lease, lock_name, paas, ecs, clock):
    """paas leads; an ecs standby (its store counts calls) has seen a handover to ecs announced."""
    holder = make_lease(paas)
    holder.step()
    holder.step()
    faulty = FaultyStore(make_store())
    standby = make_lease(ecs, store=faulty)
    clock.advance(standby.step())
    assert reads_in(standby, faulty, clock, 1.0) == 1  # one read per poll_seconds
    make_store().announce(lock_name, "ecs", expected_token=1)
    return holder, standby, faulty


def test_a_standby_reads_fast_while_a_handover_to_it_is_announced(announced, clock):
    _, standby, faulty = announced
    reads = reads_in(standby, faulty, clock, 1.0)
    assert 1 / ANNOUNCED_POLL_SECONDS - 1 <= reads <= 1 / ANNOUNCED_POLL_SECONDS + 1
    faulty.fail["read"] = "before"  # a failed read is retried just as fast
    reads = reads_in(standby, faulty, clock, 1.0)
    assert 1 / ANNOUNCED_POLL_SECONDS - 1 <= reads <= 1 / ANNOUNCED_POLL_SECONDS + 1
    assert standby.role is Role.STANDBY


def test_a_standby_of_another_environment_does_not_hurry(announced, make_lease, clock):
    faulty = FaultyStore(announced[0].store)
    other = make_lease(Identity.new("paas"), store=faulty)
    clock.advance(other.step())
    assert reads_in(other, faulty, clock, 2.0) == 2


def test_the_pin_that_follows_an_announcement_is_acquired_at_the_next_fast_read(
    announced, make_store, lock_name, ecs, clock
):
    _, standby, _ = announced
    delay = standby.step()
    assert delay == pytest.approx(ANNOUNCED_POLL_SECONDS)
    make_store().pin(lock_name, "ecs", expected_token=1, new_version=new_version(), end_tenure=True)
    clock.advance(delay)
    standby.step()
    assert (standby.role, standby.token) == (Role.LEADER, 3)
    assert standby.read().handover_to is None


def test_a_stale_announcement_hurries_a_standby_for_one_lease_only(
    announced, make_store, lock_name, clock
):
    holder, standby, faulty = announced
    assert reads_in(standby, faulty, clock, 0.5) >= 0.5 / ANNOUNCED_POLL_SECONDS - 1
    for _ in range(int(TIMINGS.lease_seconds // TIMINGS.renew_seconds)):
        clock.advance(TIMINGS.renew_seconds)  # the holder keeps renewing meanwhile
        holder.step()
    assert reads_in(standby, faulty, clock, 2.0) == 2  # back to one read per poll_seconds
    assert standby.read().handover_to == "ecs"
    make_store().announce(lock_name, "ecs", expected_token=1)  # a new one: hurry again
    assert reads_in(standby, faulty, clock, 1.0) >= 1 / ANNOUNCED_POLL_SECONDS - 1


def test_an_announcement_neither_delays_nor_hastens_a_takeover(
    announced, make_store, lock_name, clock
):
    holder, standby, _ = announced
    clock.advance(TIMINGS.renew_seconds)
    holder.step()  # its last renewal: a new version
    version = holder.read().version
    standby.step()  # sees it now
    for advance in [1.0] * int(TIMINGS.lease_seconds - 1) + [0.99]:  # until 0.01 s short
        clock.advance(advance)
        make_store().announce(lock_name, "ecs", expected_token=1)
        standby.step()
        assert standby.role is Role.STANDBY and standby.read().version == version
    clock.advance(0.01 + ANNOUNCED_POLL_SECONDS)  # its first read after the full lease
    standby.step()
    assert (standby.role, standby.token) == (Role.LEADER, 2)


def test_claims_and_renewals_acknowledge_settled_claims_and_an_ended_tenure_has_a_last_word(
    make_store, make_lease, paas, clock
):
    """A claim is acknowledged by the next write of its tenure (a claim of any entry, or a
    renewal) after it was settled, never before; a new tenure acknowledges nothing until told
    the earlier claims are resolved; a holder whose tenure a pin ended writes its last
    acknowledgement when it notices."""
    lease = make_lease(paas)
    lease.step()
    lease.fence(["a", "b"], everything=True)
    first = lease.claim("a", SLOT)
    assert (first.last.epoch, first.last.acked) == (1, None)  # held back
    clock.advance(TIMINGS.renew_seconds)
    lease.step()
    assert lease.read().acked is None
    lease.predecessors_resolved()
    second = lease.claim("b", SLOT)
    token = second.last.token
    assert (second.last.epoch, second.last.acked) == (2, Acked(token, 0))
    lease.settle("a", SLOT)
    clock.advance(TIMINGS.renew_seconds)
    lease.step()
    acked = lease.read().acked
    assert first.last.acked_by(acked) and not second.last.acked_by(acked)
    lease.settle("b", SLOT)
    third = lease.claim("a", SLOT + timedelta(minutes=1))  # acknowledges the second
    assert third.last.acked == Acked(token, 2) and second.last.acked_by(third.last.acked)
    assert lease.outstanding == 1
    make_store().pin(lease.name, "ecs", expected_token=None, new_version="p", end_tenure=True)
    clock.advance(TIMINGS.renew_seconds)
    lease.step()  # renewal refused: the tenure ended; its last word
    assert lease.token is None
    acked = lease.read().acked
    assert acked == Acked(token, 2) and not third.last.acked_by(acked)


def test_a_run_in_flight_when_a_pin_ends_the_tenure_is_published_and_acknowledged(
    make_store, make_lease, paas, clock
):
    """A tenure ended by a pin may still publish what it claimed, for the rest of its safe
    time, and acknowledges it at once; past its safe time (a pause) it may not."""
    lease = make_lease(paas)
    lease.step()
    lease.fence(["a"], everything=True)
    lease.predecessors_resolved()
    claimed = lease.claim("a", SLOT)
    token = claimed.last.token
    make_store().pin(lease.name, "ecs", expected_token=None, new_version="p", end_tenure=True)
    clock.advance(TIMINGS.renew_seconds)
    lease.step()  # the renewal is refused: the tenure ended, with the claim still in flight
    assert lease.token is None and not claimed.last.acked_by(lease.read().acked)
    assert lease.may_publish(token)
    lease.settle("a", SLOT)  # published: acknowledged in a write of its own
    assert claimed.last.acked_by(lease.read().acked)
    clock.advance(TIMINGS.safe_seconds)
    assert not lease.may_publish(token)
