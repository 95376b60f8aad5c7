"""The leased scheduler's loop in this process, on a real Redis store and a real Redis broker:
what a beat process does not show from outside (its store state and its error log)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from celery import Celery
from celery.schedules import BaseSchedule

from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.scheduler import LeasedScheduler
from beat_handover.scheduler.leased import BeatStartupError
from tests.servers import free_port

pytestmark = [pytest.mark.integration]


class EveryOtherDay(BaseSchedule):
    """A custom schedule type: Celery can run it, the fire-time maths cannot list its slots."""

    def is_due(self, last_run_at):
        return False, 3600.0


@pytest.fixture
def lone_broker(tmp_path) -> Iterator[tuple[str, subprocess.Popen, Callable[[], None]]]:
    """A redis-server of this test's own, which the test may kill and start again."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--dir", str(tmp_path)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_ping(url)
    servers = [server]

    def restart() -> None:
        """Start it again on the same port (empty: it saves nothing)."""
        servers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        wait_ping(url)

    yield url, server, restart
    for running in servers:
        running.kill()
        running.wait()


def wait_ping(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def leased_app(broker: str, lock_url: str, name: str, schedule: dict) -> Celery:
    app = Celery("in-process", broker=broker, set_as_current=False)
    app.conf.update(
        beat_schedule=schedule,
        beat_lock_url=lock_url,
        beat_lock_name=name,
        beat_lock_environment="paas",
        beat_lock_lease_seconds=2,
        beat_lock_renew_seconds=0.4,
        beat_lock_safe_seconds=1.5,
        beat_lock_poll_seconds=0.2,
        broker_connection_max_retries=1,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
    )
    return app


def tick_until(
    scheduler: LeasedScheduler, condition: Callable[[], bool], what: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(min(scheduler.tick(), 0.2))


def runs(lock_url: str, name: str, entry: str) -> int:
    store = open_store(parse_lock_url(lock_url))
    claim = store.read_claim(name, entry)
    store.close()
    return claim.runs if claim is not None else 0


def test_an_entry_whose_slots_cannot_be_named_stops_the_scheduler_at_start(
    redis_url, broker_url, unique_name
):
    """Never run as something else: the scheduler refuses to be built, naming the entry."""
    app = leased_app(
        broker_url,
        redis_url,
        unique_name,
        {
            "custom": {"task": "noop", "schedule": EveryOtherDay()},
            "tick": {"task": "noop", "schedule": timedelta(seconds=1)},
        },
    )
    for lazy in (True, False):
        with pytest.raises(BeatStartupError) as caught:
            LeasedScheduler(app=app, lazy=lazy)
        assert caught.value.exit_code == os.EX_CONFIG
        assert str(caught.value).startswith(
            "leased beat scheduler: beat_schedule entry 'custom' cannot be fenced: "
            "EveryOtherDay schedule"
        )


def test_first_runs_and_bookkeeping_are_those_of_stock_beat(redis_url, broker_url, unique_name):
    """An interval entry first runs one interval after the scheduler made it (as stock beat);
    the entry shows the store's last slot and run count."""
    app = leased_app(
        broker_url,
        redis_url,
        unique_name,
        {"tick": {"task": "noop", "schedule": timedelta(seconds=1)}},
    )
    scheduler = LeasedScheduler(app=app)
    made = scheduler.schedule["tick"].last_run_at
    try:
        tick_until(scheduler, lambda: runs(redis_url, unique_name, "tick") >= 3, "three runs")
        store = open_store(parse_lock_url(redis_url))
        claim = store.read_claim(unique_name, "tick")
        store.close()
    finally:
        scheduler.close()
    entry = scheduler.schedule["tick"]
    assert (entry.last_run_at, entry.total_run_count) == (claim.slot, claim.runs)
    first = claim.slot - (claim.runs - 1) * timedelta(seconds=1)
    assert first == made.replace(microsecond=0) + timedelta(seconds=1)


def broker_messages(broker: str) -> list[dict]:
    """The messages waiting in the broker's default queue (kombu's Redis list)."""
    client = redis.Redis.from_url(broker)
    messages = [json.loads(raw) for raw in client.lrange("celery", 0, -1)]
    client.close()
    return messages


def broker_slots(broker: str, entry: str) -> set[datetime]:
    """The slots of ``entry`` waiting in the broker's default queue."""
    return {
        datetime.fromisoformat(m["headers"]["beat_slot"])
        for m in broker_messages(broker)
        if m["headers"].get("beat_entry") == entry
    }


def test_a_broker_down_leaves_each_run_in_doubt_resent_if_safe_to_repeat_else_reported(
    lone_broker,
    redis_url,
    unique_name,
    caplog,
):
    """The broker refuses publishes for a while: every run claimed meanwhile is in doubt. The
    entry declared safe to repeat gets each one sent once the broker is back (none lost); the
    other has each one logged at ERROR and kept in the store for an operator (none silent)."""
    caplog.set_level(logging.INFO, logger="beat_handover.scheduler")
    broker, server, restart = lone_broker
    app = leased_app(
        broker,
        redis_url,
        unique_name,
        {
            "tick": {"task": "noop", "schedule": timedelta(seconds=1)},
            "tock": {"task": "noop", "schedule": timedelta(seconds=1)},
        },
    )
    app.conf.beat_lock_repeat_safe = ["to*"]
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.settimeout(10)
    app.conf.beat_lock_statsd_url = f"statsd://127.0.0.1:{statsd.getsockname()[1]}"
    scheduler = LeasedScheduler(app=app)
    store = open_store(parse_lock_url(redis_url))

    def failed(entry: str) -> set[datetime]:
        prefix = f"entry={entry} slot="
        return {
            datetime.fromisoformat(r.getMessage()[len(prefix) :].split()[0])
            for r in caplog.records
            if r.getMessage().startswith(prefix) and "its publish failed" in r.getMessage()
        }

    try:
        tick_until(scheduler, lambda: runs(redis_url, unique_name, "tock") >= 1, "a first run")
        server.kill()
        server.wait()
        tick_until(scheduler, lambda: len(failed("tock")) >= 3, "three publishes to fail")
        restart()
        tick_until(
            scheduler,
            lambda: scheduler.in_doubt.counts["resent"] >= len(failed("tock")),
            "the runs in doubt to be sent again",
        )
        reported = store.doubts(unique_name)
        history = store.events(unique_name, 100)
    finally:
        scheduler.close()
        store.close()
    lost = failed("tock") - broker_slots(broker, "tock")
    assert not lost, f"tock runs in doubt never sent again: {sorted(lost)}"
    assert scheduler.in_doubt.counts["resent"] == len(failed("tock"))
    assert {(d.entry, d.slot) for d in reported} == {("tick", slot) for slot in failed("tick")}
    assert {d.entry for d in reported} == {"tick"}
    assert all(d.reason.startswith("the publish failed: ") for d in reported)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len([e for e in errors if e.startswith("entry=tick slot=") and "IN DOUBT" in e]) == len(
        reported
    )
    kinds = {(e.kind, e.result, e.detail["entry"]) for e in history if e.kind == "in-doubt"}
    assert kinds == {("in-doubt", "reported", "tick"), ("in-doubt", "resent", "tock")}
    tags = f"#lock:{unique_name},environment:paas"
    expected = {
        f"beat_lock.publish.failed:1|c|{tags},entry:tick",
        f"beat_lock.runs.in_doubt:1|c|{tags},entry:tick",
        f"beat_lock.runs.in_doubt:1|c|{tags},entry:tock",
    }
    with statsd:
        seen: set[str] = set()
        while not expected <= seen:
            seen.add(statsd.recv(65535).decode())  # TimeoutError if one never came


def test_an_entry_added_while_leading_is_fenced_and_sent_in_the_same_tenure(
    lock, broker_url, caplog
):
    """A database schedule grows while beat leads: the new entry is fenced on its own (no new
    pass over every entry) and sent; the tenure, and the other entry's position, go on."""
    caplog.set_level(logging.INFO, logger="beat_handover.beat_lock.lease")
    app = leased_app(
        broker_url,
        lock.url,
        lock.name,
        {"tick": {"task": "noop", "schedule": timedelta(seconds=1)}},
    )
    scheduler = LeasedScheduler(app=app)
    try:
        tick_until(scheduler, lambda: runs(lock.url, lock.name, "tick") >= 2, "two runs")
        token = scheduler.lease.token
        scheduler.update_from_dict({"tock": {"task": "noop", "schedule": timedelta(seconds=1)}})
        tick_until(scheduler, lambda: runs(lock.url, lock.name, "tock") >= 2, "the new entry")
        assert scheduler.lease.token == token
        tick_until(scheduler, lambda: runs(lock.url, lock.name, "tick") >= 5, "tick going on")
        logged = [r.getMessage() for r in caplog.records]
    finally:
        scheduler.close()
    fences = [line for line in logged if "lease fenced" in line]
    assert [(" entries=1 " in f, "everything=True" in f) for f in fences] == [
        (True, True),
        (True, False),
    ], fences
    assert not [line for line in logged if "stopped leading" in line]


def former_tenure(lock_url: str, name: str, slot: datetime) -> Lease:
    """A leader that claimed ``slot`` of tick and tock, never said it published them, and went
    silent (no release): its tenure ends by a takeover."""
    lease = Lease(
        open_store(parse_lock_url(lock_url)),
        name,
        Identity.new("ecs"),
        LeaseTimings(lease_seconds=2, renew_seconds=0.4, safe_seconds=1.5, poll_seconds=0.2),
    )
    lease.step()
    assert lease.fence(["tick", "tock"], everything=True) == {}
    lease.predecessors_resolved()
    assert lease.claim("tick", slot).claimed and lease.claim("tock", slot).claimed
    lease.step()  # a renewal: acknowledges nothing of the two, still outstanding
    return lease


@pytest.mark.parametrize("last_word", [False, True])
def test_a_new_leader_resends_or_reports_the_claims_its_predecessor_never_acknowledged(
    lone_broker, redis_url, unique_name, caplog, last_word
):
    """The former leader's unacknowledged claims wait for its last word; without one, the
    repeat-safe slot is sent again (once, marked as resent) and the other is reported in
    doubt; with one (it published them, and says so before the wait is over), nothing is."""
    caplog.set_level(logging.INFO, logger="beat_handover.scheduler")
    broker, _, _ = lone_broker
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    former = former_tenure(redis_url, unique_name, slot)
    app = leased_app(
        broker,
        redis_url,
        unique_name,
        {
            "tick": {"task": "noop", "schedule": timedelta(seconds=1)},
            "tock": {"task": "noop", "schedule": timedelta(seconds=1)},
        },
    )
    app.conf.beat_lock_repeat_safe = ["tock"]
    scheduler = LeasedScheduler(app=app)
    store = open_store(parse_lock_url(redis_url))

    def waiting() -> bool:
        return any("not acknowledged" in r.getMessage() for r in caplog.records)

    try:
        tick_until(scheduler, waiting, "the new leader to wait for the last word")
        if last_word:
            former.settle("tick", slot)
            former.settle("tock", slot)
            former.release()  # its last acknowledgement, then the release (refused: not ours)
        tick_until(scheduler, lambda: scheduler.in_doubt.counts["awaiting"] == 0, "judgement")
        tick_until(scheduler, lambda: runs(redis_url, unique_name, "tock") >= 3, "more runs")
        doubts = store.doubts(unique_name)
    finally:
        scheduler.close()
        store.close()
    resent = [
        m for m in broker_messages(broker) if m["headers"].get("beat_lock_resent_from") is not None
    ]
    if last_word:
        assert (doubts, resent) == ([], [])
        assert scheduler.in_doubt.counts["reported"] == scheduler.in_doubt.counts["resent"] == 0
    else:
        assert [(d.entry, d.slot, d.token) for d in doubts] == [("tick", slot, former.token)]
        assert [(m["headers"]["beat_entry"], m["headers"]["beat_slot"]) for m in resent] == [
            ("tock", slot.isoformat())
        ]
        assert resent[0]["headers"]["beat_lock_resent_from"] == former.token
    assert broker_slots(broker, "tick") & {slot} == set()  # never sent again by the new leader


def test_a_slot_in_doubt_is_resent_only_as_late_as_a_late_run_may_go(
    redis_url, broker_url, unique_name
):
    """Max lateness for every entry; a critical entry (catch-up none) only within the on-time
    grace, since a critical run is never sent late by surprise."""
    app = leased_app(
        broker_url,
        redis_url,
        unique_name,
        {
            "letters": {"task": "noop", "schedule": timedelta(minutes=1)},
            "tick": {"task": "noop", "schedule": timedelta(seconds=1)},
        },
    )
    app.conf.beat_lock_critical = ["letters"]
    app.conf.beat_lock_max_lateness_seconds = 60
    scheduler = LeasedScheduler(app=app)
    now = datetime.now(UTC)
    try:
        assert scheduler.too_late("letters", now - timedelta(seconds=2)) is None
        assert scheduler.too_late("letters", now - timedelta(seconds=30)).endswith(
            "late, and its catch-up policy is none (on time only within 5s)"
        )
        assert scheduler.too_late("tick", now - timedelta(seconds=30)) is None
        assert scheduler.too_late("tick", now - timedelta(seconds=90)).endswith(
            "late, more than max lateness"
        )
    finally:
        scheduler.close()
