"""Runs missed while no beat led are caught up by each entry's policy (real processes)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.harness import (
    Processes,
    each_slot_once,
    interval_slots,
    missing_and_extra,
    settled,
    utc,
)
from tests.scheduler.test_leased_processes import at_mid_second, lead, wait_sent

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GRACE_SECONDS = 5.0  # max(2 x poll, 5 s) with the tests' 0.2 s poll
ONE_SECOND = timedelta(seconds=1)


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_runs_missed_while_no_beat_led_follow_each_entrys_policy(processes: Processes):
    """paas is killed and ecs starts later than the grace: the runs of the gap are late. Policy
    all sends every one of them; latest (an on-time run exists) and none (the critical entry)
    skip them and carry on with the on-time runs."""
    worker = processes.worker()
    paas = lead(processes, "paas", worker)
    wait_sent(processes, "paas", 1, paas, worker)
    at_mid_second()
    paas.kill()
    killed_at = time.time()
    time.sleep(GRACE_SECONDS + 2)
    ecs = lead(processes, "ecs", worker)
    wait_sent(processes, "ecs", 2, ecs, worker)
    records = settled(processes, ecs)

    slots = each_slot_once(records)
    got = slots["every-second-all"]
    missing, _ = missing_and_extra(got, interval_slots(got[0], ONE_SECOND, got[-1]))
    assert not missing, f"policy all lost {missing}"
    caught_up = min(
        r.slot for r in records if r.entry == "every-second-all" and r.environment == "ecs"
    )
    assert caught_up <= utc(killed_at) + ONE_SECOND

    for entry, policy in (("every-second", "latest"), ("every-second-critical", "none")):
        got = slots[entry]
        expected = interval_slots(got[0], ONE_SECOND, got[-1])
        missing, _ = missing_and_extra(got, expected)
        last_paas = max(r.slot for r in records if r.entry == entry and r.environment == "paas")
        first_ecs = min(r.slot for r in records if r.entry == entry and r.environment == "ecs")
        assert len(missing) >= 2, f"{entry}: late runs were sent: {got}"
        assert missing == [
            s.isoformat()
            for s in interval_slots(last_paas + ONE_SECOND, ONE_SECOND, first_ecs - ONE_SECOND)
        ], entry
        assert first_ecs > utc(killed_at) + ONE_SECOND, f"{entry} sent a late run {first_ecs}"
        assert ecs.logged(f"entry={entry} policy={policy} skipped")
