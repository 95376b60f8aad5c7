"""The leased scheduler's loop in this process, on a real Redis store and a real Redis broker:
what a beat process does not show from outside (its store state and its error log)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery
from celery.schedules import BaseSchedule

from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.scheduler import LeasedScheduler
from beat_handover.scheduler.leased import BeatStartupError
from tests.servers import free_port

pytestmark = [pytest.mark.integration]


class EveryOtherDay(BaseSchedule):
    """A custom schedule type: Celery can run it, the fire-time maths cannot list its slots."""

    def is_due(self, last_run_at):
        return False, 3600.0


@pytest.fixture
def lone_broker(tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of this test's own, which the test may kill."""
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url, server
    server.kill()
    server.wait()


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


def test_a_run_claimed_but_not_published_is_logged_at_error_with_its_slot(
    lone_broker,
    redis_url,
    unique_name,
    caplog,
):
    caplog.set_level(logging.INFO, logger="beat_handover.scheduler.leased")
    broker, server = lone_broker
    app = leased_app(
        broker,
        redis_url,
        unique_name,
        {
            "tick": {"task": "noop", "schedule": timedelta(seconds=1)},
        },
    )
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    statsd.settimeout(10)
    app.conf.beat_lock_statsd_url = f"statsd://127.0.0.1:{statsd.getsockname()[1]}"
    scheduler = LeasedScheduler(app=app)

    def unpublished() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.ERROR and "could not be published" in r.getMessage()
        ]

    try:
        tick_until(scheduler, lambda: runs(redis_url, unique_name, "tick") >= 1, "a first run")
        server.kill()
        server.wait()
        tick_until(scheduler, unpublished, "a publish to fail")
    finally:
        scheduler.close()
    message = unpublished()[0]
    assert message.startswith("entry=tick slot=20")
    assert message.endswith(
        "was claimed but could not be published; it will not be sent "
        "(a claim cannot be undone and resending could send it twice)"
    )
    assert runs(redis_url, unique_name, "tick") >= 2  # the failed run's claim stands
    failed = f"beat_lock.publish.failed:1|c|#lock:{unique_name},environment:paas,entry:tick"
    with statsd:
        seen: list[str] = []
        while failed not in seen:
            seen.append(statsd.recv(65535).decode())  # TimeoutError if it never came


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
