"""Real beats whose wall clock is wrong, on both lock backends: an hour ahead, ten minutes behind,
and a leader's clock stepped an hour ahead or ten minutes back in the middle of its tenure
(``tests/faults/clock.py`` shifts ``CLOCK_REALTIME`` only, as an NTP step does). The worker and
the stores keep the real time.

Every scenario counts, from what the worker received: runs sent more than the allowed skew
early, one-second slots of the test's window never sent (suppressed, or skipped as late), slots
received twice, and runs whose slot is further from the moment they arrived than the skew plus
the on-time grace (a run named by a wrong clock). All four must be 0: the skewed beat neither
leads nor claims, the correct one does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from beat_handover.beat_lock.timings import DEFAULT_MAX_CLOCK_SKEW_SECONDS
from beat_handover.handover.testing.received_runs import doubled_slots
from tests.faults.clock import ShiftedClock, compiler_missing
from tests.harness import Proc, Processes, Record, read_records, settled, utc, wait_for
from tests.scheduler.test_leased_processes import (
    LEADING,
    SECOND_ENTRIES,
    STARTUP_SECONDS,
    lead,
    wait_sent,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_SKEW = DEFAULT_MAX_CLOCK_SKEW_SECONDS
GRACE_SECONDS = 5.0  # the on-time grace of the test timings (max(2 x poll, 5 s))
FAULT_SECONDS = 3.0  # how long the wrong clock lasts
AFTER_SECONDS = 3.0  # how long the test runs after the clock is corrected
SKEWED = "clock skewed"  # logged (ERROR) by a participant whose clock is beyond the bound


@pytest.fixture
def clock(tmp_path) -> Iterator[ShiftedClock]:
    missing = compiler_missing()
    if missing:
        pytest.skip(missing)
    yield ShiftedClock.build(tmp_path / "clock")


def joined(beat: Proc) -> bool:
    """The beat has read the lease once: it leads, stands by, or refuses for its clock."""
    return beat.logged("lease standby") or beat.logged("lease leading") or beat.logged(SKEWED)


def figures(records: list[Record], start: float, end: float) -> dict[str, int]:
    """What the worker received, judged against the real clock; one-second slots are expected
    in every whole second of [start, end]."""
    early = [r for r in records if r.slot is not None and r.slot > utc(r.received_at + MAX_SKEW)]
    off = [
        r
        for r in records
        if r.slot is not None
        and abs((r.slot - utc(r.received_at)).total_seconds()) > MAX_SKEW + GRACE_SECONDS
    ]
    first = utc(start).replace(microsecond=0) + timedelta(seconds=1)
    expected = [first + timedelta(seconds=n) for n in range(int(end - start))]
    suppressed = 0
    for entry in SECOND_ENTRIES:
        got = {r.slot for r in records if r.entry == entry}
        suppressed += sum(1 for slot in expected if slot not in got)
    return {
        "early": len(early),
        "suppressed": suppressed,
        "twice": sum(n - 1 for *_, n in doubled_slots(records)),
        "off": len(off),
    }


def run_with_skewed_paas(
    processes: Processes, clock: ShiftedClock, shift: float
) -> tuple[dict[str, int], Proc]:
    """paas starts with its clock ``shift`` seconds off and ecs with a correct one; after
    FAULT_SECONDS paas's clock is corrected (as ntpd would step it), then AFTER_SECONDS more."""
    worker = processes.worker()
    clock.set(shift)
    paas = processes.beat("paas", **clock.env())
    wait_for(lambda: joined(paas), STARTUP_SECONDS, "paas to join", paas, worker)
    ecs = processes.beat("ecs")
    wait_for(lambda: joined(ecs), STARTUP_SECONDS, "ecs to join", ecs, paas, worker)
    wait_for(lambda: read_records(processes.record_path), STARTUP_SECONDS, "a run", ecs, paas)
    start = time.time()
    time.sleep(FAULT_SECONDS)
    clock.set(0)
    time.sleep(AFTER_SECONDS)
    end = time.time() - 1.0  # the last second's runs may still be on their way
    return figures(settled(processes, paas, ecs), start, end), paas


def test_a_beat_an_hour_ahead_neither_leads_nor_suppresses_runs(
    processes: Processes, clock: ShiftedClock
):
    found, paas = run_with_skewed_paas(processes, clock, 3600)
    assert found == {"early": 0, "suppressed": 0, "twice": 0, "off": 0}, found
    assert paas.logged(SKEWED) and not paas.logged(LEADING)


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_a_beat_ten_minutes_behind_neither_leads_nor_sends_stale_runs(
    processes: Processes, clock: ShiftedClock
):
    """On Redis only, to keep the suite short: DynamoDB's reading of a clock behind is in
    tests/lease/test_store_clock.py, and a leader stepped behind runs on both backends below."""
    found, paas = run_with_skewed_paas(processes, clock, -600)
    assert found == {"early": 0, "suppressed": 0, "twice": 0, "off": 0}, found
    assert paas.logged(SKEWED) and not paas.logged(LEADING)


# A step back sends nothing (every slot up to the real time is claimed), so it shows only if it
# lasts longer than the on-time grace: then the runs due meanwhile are skipped as late.
@pytest.mark.parametrize(
    ("step", "seconds"),
    [(3600.0, FAULT_SECONDS), (-600.0, GRACE_SECONDS + 2)],
    ids=["ahead", "behind"],
)
def test_a_leader_whose_clock_steps_steps_down_at_once(
    processes: Processes, clock: ShiftedClock, step: float, seconds: float
):
    """paas leads with a correct clock; its clock steps an hour ahead (or ten minutes behind),
    then back: no slot is claimed by the wrong clock, ecs takes over within the on-time grace,
    so nothing is lost."""
    worker = processes.worker()
    paas = lead(processes, "paas", worker, **clock.env())
    ecs = processes.beat("ecs")
    wait_for(lambda: ecs.logged("lease standby"), STARTUP_SECONDS, "ecs to stand by", ecs, paas)
    wait_sent(processes, "paas", 1, paas, ecs, worker)
    start = time.time()
    clock.set(step)
    time.sleep(seconds)
    clock.set(0)
    time.sleep(AFTER_SECONDS)
    end = time.time() - 1.0
    found = figures(settled(processes, paas, ecs), start, end)
    assert found == {"early": 0, "suppressed": 0, "twice": 0, "off": 0}, found
    assert paas.logged(SKEWED) and ecs.logged(LEADING)
