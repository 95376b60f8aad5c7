"""Real ``celery beat`` processes in two environments, a real worker, on both lock backends.

Every test checks the record the worker kept: each slot received at most once, and no slot of
the one-second entries missing between the first and the last one received (a takeover inside
the on-time grace loses nothing, whatever the entry's catch-up policy).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from beat_handover.beat_lock.layout import new_version
from tests.harness import (
    Proc,
    Processes,
    Record,
    each_slot_once,
    interval_slots,
    missing_and_extra,
    read_records,
    settled,
    utc,
    wait_for,
)
from tests.scheduler.conftest import LEASE_SECONDS, POLL_SECONDS, Lock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECOND_ENTRIES = ("every-second", "every-second-all", "every-second-critical")
STARTUP_SECONDS = 60  # generous: a celery process on a loaded two-core machine
MARGIN_SECONDS = 2.5  # scheduling noise of a loaded machine on top of a timing bound
LEADING = "dispatching lock="  # logged when a beat starts dispatching under a new token
SENDING = "Sending due task"


def records_of(processes: Processes, environment: str | None = None) -> list[Record]:
    return [
        r
        for r in read_records(processes.record_path)
        if environment is None or r.environment == environment
    ]


def wait_sent(processes: Processes, environment: str, seconds: float, *show: Proc) -> None:
    """Until every one-second entry has a run from ``environment`` whose slot is at least
    ``seconds`` from now: it has been dispatching steadily since, not only catching up."""
    until = utc(time.time() + seconds)

    def done() -> bool:
        latest = {r.entry: r.slot for r in records_of(processes, environment)}
        return all(entry in latest and latest[entry] >= until for entry in SECOND_ENTRIES)

    wait_for(
        done,
        STARTUP_SECONDS + seconds,
        f"{environment} to send every one-second entry up to {until:%H:%M:%S}",
        *show,
    )


def lead(processes: Processes, environment: str, *show: Proc, **env: str) -> Proc:
    """Start a beat and wait until it dispatches."""
    beat = processes.beat(environment, **env)
    wait_for(lambda: beat.logged(LEADING), STARTUP_SECONDS, f"{environment} to lead", beat, *show)
    return beat


def stand_by(processes: Processes, environment: str, *show: Proc, **env: str) -> Proc:
    """Start a beat and wait until it has looked at the lease and stands by."""
    beat = processes.beat(environment, **env)
    wait_for(
        lambda: beat.logged("lease standby"),
        STARTUP_SECONDS,
        f"{environment} to stand by",
        beat,
        *show,
    )
    return beat


def at_mid_second() -> None:
    """Wait until the middle of a wall-clock second: the one-second entries are claimed and
    published just after each whole second, so a signal now does not fall between the two."""
    time.sleep((1.5 - time.time() % 1.0) % 1.0)


def assert_complete(records: list[Record], entries: tuple[str, ...] = SECOND_ENTRIES) -> None:
    """Each slot once; every one-second slot between the first and last received."""
    slots = each_slot_once(records)
    for entry in entries:
        got = slots[entry]
        missing, _ = missing_and_extra(got, interval_slots(got[0], timedelta(seconds=1), got[-1]))
        assert not missing, f"{entry}: slots never received: {missing}"


def tokens(records: list[Record], environment: str) -> set[int]:
    return {r.token for r in records if r.environment == environment}


def test_two_beats_send_each_slot_once_and_a_pin_moves_dispatch(processes: Processes, lock: Lock):
    """Two beats together: one environment sends everything. Pinned to ecs while paas leads:
    paas stops at once (its tenure ended in the same write), ecs leads, nothing lost."""
    worker = processes.worker()
    paas = lead(processes, "paas", worker)
    ecs = stand_by(processes, "ecs", paas)
    wait_sent(processes, "paas", 3, paas, ecs, worker)
    together = read_records(processes.record_path)
    assert {r.environment for r in together} == {"paas"}
    assert not ecs.logged(SENDING)
    backend = "redis at" if lock.backend == "redis" else "dynamodb table"
    assert paas.logged(f". lock -> {lock.name} on {backend}")
    assert paas.logged(". environment -> paas")
    assert ecs.logged(". role -> standby until it holds the lease (held by paas/")

    store = lock.store()
    record = store.read(lock.name)
    at_mid_second()
    pinned_at = time.time()
    assert (
        store.pin(
            lock.name,
            "ecs",
            expected_token=record.token,
            new_version=new_version(),
            end_tenure=True,
        )
        is not None
    )
    store.close()
    wait_for(lambda: ecs.logged(LEADING), 10 * LEASE_SECONDS, "ecs to lead after the pin", ecs)
    wait_sent(processes, "ecs", 2, paas, ecs, worker)
    assert paas.alive() and paas.logged("lease stopped leading")

    records = settled(processes, paas, ecs)
    assert_complete(records)
    assert all(r.slot <= utc(pinned_at) for r in records if r.environment == "paas")
    assert min(tokens(records, "ecs")) > max(tokens(records, "paas"))
    assert tokens(together, "paas") == tokens(records, "paas")


def test_killed_leader_is_replaced_within_lease_and_poll(processes: Processes):
    """The kill lands between two dispatches: a leader killed between a claim and its publish
    loses that one run (the claim cannot be undone), which README documents."""
    worker = processes.worker()
    paas = lead(processes, "paas", worker)
    ecs = stand_by(processes, "ecs", paas)
    wait_sent(processes, "paas", 2, paas, ecs, worker)

    at_mid_second()
    mark = ecs.log_size()
    killed = time.monotonic()
    paas.kill()
    wait_for(lambda: ecs.logged(LEADING, after=mark), 10 * LEASE_SECONDS, "ecs to take over", ecs)
    took = time.monotonic() - killed
    assert took <= LEASE_SECONDS + 2 * POLL_SECONDS + MARGIN_SECONDS, took
    assert ecs.logged("took over from", after=mark)
    wait_sent(processes, "ecs", 2, ecs, worker)

    records = settled(processes, ecs)
    assert_complete(records)
    for entry in SECOND_ENTRIES:
        by_paas = [r.slot for r in records if r.entry == entry and r.environment == "paas"]
        by_ecs = [r.slot for r in records if r.entry == entry and r.environment == "ecs"]
        assert max(by_paas) < min(by_ecs), entry


def test_paused_leader_sends_nothing_and_sigterm_hands_over_within_a_poll(
    processes: Processes,
):
    worker = processes.worker()
    paas = lead(processes, "paas", worker)
    ecs = stand_by(processes, "ecs", paas, scheduler="beat_handover.scheduler.LeasedScheduler")
    wait_sent(processes, "paas", 2, paas, ecs, worker)

    at_mid_second()
    paused_at = time.time()
    paas.pause()
    wait_for(lambda: ecs.logged(LEADING), 10 * LEASE_SECONDS, "ecs to take over", ecs)
    time.sleep(max(0.0, paused_at + LEASE_SECONDS + 1.0 - time.time()))
    resumed = paas.log_size()
    paas.resume()
    wait_for(
        lambda: paas.logged("lease stopped leading", after=resumed),
        10,
        "paas to notice it lost the lease",
        paas,
    )
    wait_sent(processes, "ecs", 2, ecs, worker)
    assert not paas.logged(SENDING, after=resumed)

    at_mid_second()
    mark = paas.log_size()
    stopped = time.monotonic()
    ecs.send(15)
    wait_for(lambda: paas.logged(LEADING, after=mark), 10, "paas to lead after SIGTERM", paas)
    took = time.monotonic() - stopped
    assert ecs.wait_exit(10) == 0
    assert ecs.logged("leased beat stopped")
    # Released, not expired: acquired as a free lease, well before a lease could expire.
    assert paas.logged("how='acquired'", after=mark)
    assert took < LEASE_SECONDS, took
    wait_sent(processes, "paas", 2, paas, worker)

    records = settled(processes, paas)
    assert_complete(records)
    first_tenure = min(tokens(records, "paas"))
    assert all(r.slot <= utc(paused_at) for r in records if r.token == first_tenure)
