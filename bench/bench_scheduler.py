"""What the leased scheduler costs over stock ``celery.beat.Scheduler`` on the same schedule, and
how late after its slot a run is published.

Schedule: 40 one-second interval entries and 10 every-minute crontab entries. Both schedulers run
in real time with the same stubbed publish (so the ratio is about scheduling, not the broker):

* pure computation: deciding one due run (stock ``is_due`` + next entry; leased ``decide`` +
  ``next_due``), no store;
* with the store: wall time spent inside ``tick()`` per run dispatched, the leased scheduler
  claiming every run in a Redis store on a local redis-server (loopback, no network);
* dispatch latency: slot time to the publish call, and to the end of a real publish to a local
  Redis broker.

    .venv/bin/python bench/bench_scheduler.py
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.beat import Scheduler
from celery.schedules import crontab, schedule

from beat_handover.scheduler.headers import SLOT
from beat_handover.scheduler.leased import LeasedScheduler
from beat_handover.scheduler.slots import CatchUpRules, Position, decide, next_due

RUN_SECONDS = 6.0
INTERVAL_ENTRIES = 40
CRONTAB_ENTRIES = 10
PURE_REPEATS = 20_000


def beat_schedule() -> dict[str, dict[str, Any]]:
    entries = {
        f"second-{n}": {"task": "bench.noop", "schedule": timedelta(seconds=1)}
        for n in range(INTERVAL_ENTRIES)
    }
    entries |= {
        f"minute-{n}": {"task": "bench.noop", "schedule": crontab(minute="*")}
        for n in range(CRONTAB_ENTRIES)
    }
    return entries


def make_app(redis_port: int) -> Celery:
    app = Celery("bench", broker=f"redis://127.0.0.1:{redis_port}/1")
    app.conf.update(
        beat_schedule=beat_schedule(),
        beat_lock_url=f"redis://127.0.0.1:{redis_port}/0",
        beat_lock_name=f"bench-{uuid.uuid4().hex[:8]}",
        beat_lock_environment="bench",
    )
    return app


class StubbedStock(Scheduler):
    published: list[float]

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> None:
        self.published.append(time.time())


class StubbedLeased(LeasedScheduler):
    published: list[float]
    lateness: list[float]

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> None:
        now = time.time()
        self.published.append(now)
        slot = datetime.fromisoformat(entry.options["headers"][SLOT])
        self.lateness.append(now - slot.timestamp())


class PublishingLeased(LeasedScheduler):
    published: list[float]
    lateness: list[float]

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        now = time.time()
        self.published.append(now)
        slot = datetime.fromisoformat(entry.options["headers"][SLOT])
        self.lateness.append(now - slot.timestamp())
        return result


def run(scheduler: Any, seconds: float) -> tuple[int, float]:
    """Tick as beat does for ``seconds`` after the first run went out. Returns (runs
    dispatched, seconds spent inside tick)."""
    scheduler.published, scheduler.lateness = [], []
    while not scheduler.published:
        time.sleep(max(0.0, scheduler.tick()))
    scheduler.published.clear()
    scheduler.lateness.clear()
    busy = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        delay = scheduler.tick()
        busy += time.perf_counter() - started
        time.sleep(max(0.0, delay))
    return len(scheduler.published), busy


def idle_tick(scheduler: Any, seconds: float = 0.3) -> float:
    """Microseconds per tick while nothing is due (just after a second's runs went out)."""
    published = len(scheduler.published)
    while len(scheduler.published) == published:
        time.sleep(max(0.0, scheduler.tick()))
    ticks = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        scheduler.tick()
        ticks += 1
    return (time.perf_counter() - started) / ticks * 1e6


def per_call(function: Callable[[], Any], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def pure_computation(app: Celery) -> tuple[float, float]:
    """Microseconds to decide one due run: stock and leased, on a one-second interval entry."""
    stock = StubbedStock(app=app, lazy=True)
    stock.merge_inplace(app.conf.beat_schedule)
    entry = stock.schedule["second-0"]
    entry.last_run_at = datetime.now(UTC) - timedelta(seconds=1.5)

    def stock_decision() -> None:
        if entry.is_due()[0]:
            next(entry)

    every_second = schedule(timedelta(seconds=1))
    rules = CatchUpRules("latest", 5.0, 3600.0, 100)
    now = datetime.now(UTC)
    position = Position.start(now - timedelta(seconds=1.5), 1, now, 5.0)

    def leased_decision() -> None:
        decide(every_second, position, now, tz=UTC, rules=rules)
        next_due(every_second, position, now, tz=UTC)

    return (
        per_call(stock_decision, PURE_REPEATS) * 1e6,
        per_call(leased_decision, PURE_REPEATS) * 1e6,
    )


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return (
        f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms "
        f"({len(ms)} runs)"
    )


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} CPUs, {model}, load average {load:.2f}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("bench_scheduler needs redis-server (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
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
                tmp,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            report(port)
        finally:
            server.terminate()
            server.wait()


def report(port: int) -> None:
    print(f"machine: {machine()}")
    print(
        f"schedule: {INTERVAL_ENTRIES} one-second interval entries + {CRONTAB_ENTRIES} "
        f"every-minute crontab entries; {RUN_SECONDS:g}s of real time per scheduler"
    )
    stock_us, leased_us = pure_computation(make_app(port))
    print(
        f"pure computation per due run: stock {stock_us:.1f} us, leased {leased_us:.1f} us, "
        f"ratio {leased_us / stock_us:.2f}"
    )

    stock = StubbedStock(app=make_app(port))
    runs, busy = run(stock, RUN_SECONDS)
    stock_per_run = busy / runs
    print(
        f"stock tick: {stock_per_run * 1e6:.0f} us per run dispatched ({runs} runs), "
        f"idle tick {idle_tick(stock):.0f} us"
    )
    stock.close()

    leased = StubbedLeased(app=make_app(port))
    runs, busy = run(leased, RUN_SECONDS)
    leased_per_run = busy / runs
    print(
        f"leased tick, each run claimed in local Redis: {leased_per_run * 1e6:.0f} us per run "
        f"dispatched ({runs} runs), ratio {leased_per_run / stock_per_run:.1f}; "
        f"idle tick {idle_tick(leased):.0f} us"
    )
    print(f"slot to publish call: {percentiles(leased.lateness)}")
    leased.close()

    publishing = PublishingLeased(app=make_app(port))
    run(publishing, RUN_SECONDS)
    print(f"slot to end of a real publish (local Redis broker): {percentiles(publishing.lateness)}")
    publishing.close()


if __name__ == "__main__":
    main()
