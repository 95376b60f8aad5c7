"""The lease in real time, with real processes and real outages: a holder frozen by SIGSTOP,
a store server frozen by SIGSTOP, and the background keeper. Short leases (2 s) keep it quick;
every wait has a generous deadline, because the machine may be busy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beat_handover.beat_lock.errors import CorruptRecord, StoreUnavailable
from beat_handover.beat_lock.lease import Lease, LeaseKeeper, Role
from beat_handover.beat_lock.record import ClaimOutcome
from beat_handover.beat_lock.timings import LeaseTimings
from tests.lease.holder_process import ENTRY, slot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMINGS = LeaseTimings(lease_seconds=2.0, renew_seconds=0.3, safe_seconds=1.5, poll_seconds=0.2)
ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 20.0


def wait_for(condition, what: str, *, step=None, deadline: float = DEADLINE_SECONDS):
    """Poll ``condition()`` (stepping ``step`` meanwhile) until it is truthy; fail naming
    ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(min(0.02, step()) if step else 0.02)
    pytest.fail(f"timed out after {deadline}s waiting for {what}")


class Child:
    """A holder process and the JSON events it prints, read by a thread as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.lease.holder_process", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[list] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def kinds(self, kind: str) -> list[list]:
        return [event for event in list(self.events) if event[0] == kind]

    def stop(self) -> str:
        """End the process; its stderr, for a failure message."""
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=10)
        return stderr


def test_a_paused_holder_cannot_claim_after_it_resumes(
    store_url, lock_name, make_store, ecs, backend
):
    durations = [
        str(getattr(TIMINGS, f))
        for f in ("lease_seconds", "renew_seconds", "safe_seconds", "poll_seconds")
    ]
    child = Child(store_url, lock_name, "paas", *durations)
    try:
        wait_for(
            lambda: len([e for e in child.kinds("claim") if e[2] == "claimed"]) >= 3,
            "the holder process to lead and claim",
        )
        os.kill(child.process.pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        standby = Lease(make_store(TIMINGS), lock_name, ecs, TIMINGS)
        wait_for(lambda: standby.role is Role.LEADER, "the standby to take over", step=standby.step)
        assert time.monotonic() - paused_at >= TIMINGS.lease_seconds
        assert standby.token == 2
        assert set(standby.fence([], everything=True)) == {ENTRY}  # before it dispatches
        time.sleep(max(0.0, paused_at + TIMINGS.lease_seconds + 0.5 - time.monotonic()))
        resumed_from = len(child.events)
        os.kill(child.process.pid, signal.SIGCONT)
        wait_for(
            lambda: len(child.kinds("claim")) >= resumed_from + 5 and child.kinds("fenced"),
            "the resumed holder to try again",
            step=standby.step,
        )
    finally:
        stderr = child.stop()
    after = [event for event in child.events[resumed_from:] if event[0] == "claim"]
    assert after, stderr
    assert {outcome for _, _, outcome in after} == {"lease-lost"}
    [fenced] = child.kinds("fenced")
    assert fenced[1:] == [
        "lease-lost",
        f"entry {ENTRY!r} was fenced by token 2: a newer leader has started dispatching"
        if backend == "dynamodb"
        else f"the holder is {ecs} (token 2), not us",
    ]
    claimed_before = [k for _, k, outcome in child.kinds("claim") if outcome == "claimed"]
    mine = standby.claim(ENTRY, slot(max(claimed_before) + 1))
    assert mine.outcome is ClaimOutcome.CLAIMED
    assert (mine.last.runs, mine.last.token) == (len(claimed_before) + 1, 2)


def test_an_unreachable_store_stops_the_holder_in_safe_time_and_nothing_is_claimed_twice(
    make_store, lock_name, paas, ecs, pause_server
):
    first = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    slots = [first + timedelta(minutes=i) for i in range(4)]
    holder = Lease(make_store(TIMINGS), lock_name, paas, TIMINGS)
    standby = Lease(make_store(TIMINGS), lock_name, ecs, TIMINGS)
    keepers = [LeaseKeeper(holder), LeaseKeeper(standby)]
    keepers[0].start()
    wait_for(holder.valid, "the holder to lead")
    assert holder.fence([ENTRY], everything=True) == {}
    keepers[1].start()
    results: list[tuple[str, datetime, ClaimOutcome]] = []

    def claim(lease: Lease, when: datetime) -> None:
        results.append((lease.identity.environment, when, lease.claim(ENTRY, when).outcome))

    claim(holder, slots[0])
    try:
        with pause_server():
            paused_at = time.monotonic()
            with pytest.raises(StoreUnavailable):
                holder.claim(ENTRY, slots[1])  # sent, unanswered: it may land on resume
            wait_for(lambda: not holder.valid(), "the holder to stop trusting its lease")
            assert time.monotonic() - paused_at <= TIMINGS.safe_seconds + 0.2
            claim(holder, slots[2])
            assert results[-1][2] is ClaimOutcome.LEASE_LOST  # refused locally, store not asked
            time.sleep(TIMINGS.lease_seconds)
        leader = wait_for(
            lambda: next((lease for lease in (holder, standby) if lease.valid()), None),
            "a leader after the outage",
        )
        assert leader.fence([ENTRY], everything=True) is not None
        for when in slots[1:]:
            for lease in (holder, standby):
                claim(lease, when)
    finally:
        for keeper in keepers:
            keeper.stop()
    claimed = Counter(when for _, when, outcome in results if outcome is ClaimOutcome.CLAIMED)
    assert set(claimed) == set(slots) and set(claimed.values()) == {1}, results
    assert make_store().read_claim(lock_name, ENTRY).runs == len(slots)


def test_the_keeper_holds_the_lease_through_a_long_sleep_and_releases_it(
    make_store, lock_name, paas, ecs
):
    starts, stops = [], []
    holder = Lease(
        make_store(TIMINGS),
        lock_name,
        paas,
        TIMINGS,
        on_start_leading=starts.append,
        on_stop_leading=stops.append,
    )
    keeper = LeaseKeeper(holder)
    keeper.start()
    wait_for(holder.valid, "the holder to lead")
    time.sleep(TIMINGS.lease_seconds * 1.5)  # the owner sleeps; the keeper renews meanwhile
    assert holder.valid() and keeper.alive and keeper.failure is None
    record = holder.read()
    assert (record.holder, record.token) == (paas, 1)
    assert record.renewals >= 3
    keeper.stop(release=True)
    assert (holder.role, starts, stops) == (Role.STOPPED, [1], ["released"])
    assert holder.read().holder is None
    assert [p.identity for p in holder.store.participants(lock_name)] == []
    other = Lease(make_store(TIMINGS), lock_name, ecs, TIMINGS)
    other.step()
    assert (other.role, other.token) == (Role.LEADER, 2)  # at once: no lease duration to wait


def test_the_keeper_stops_on_a_corrupt_record_and_keeps_the_error(
    make_store, lock_name, paas, write_raw_field
):
    make_store().acquire(lock_name, paas, expected_version=None, new_version="v1")
    write_raw_field(lock_name, "holder_id", "")
    keeper = LeaseKeeper(Lease(make_store(TIMINGS), lock_name, paas, TIMINGS))
    keeper.start()
    wait_for(lambda: not keeper.alive, "the keeper to stop")
    assert isinstance(keeper.failure, CorruptRecord)
    assert "field 'holder_id' is ''" in str(keeper.failure)
