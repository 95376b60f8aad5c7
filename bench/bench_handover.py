"""Handover and crash failover between two real ``celery beat`` processes, measured.

Part 1: twenty ``handover --to ENV`` runs back and forth (the real console script) between a paas
and an ecs beat at the DEFAULT lease timings (lease 30 s, renew 5 s, safe 20 s, poll 1 s), with a
real worker recording every run of a one-second entry. Each handover announces itself on the
lease first (the target's standbys then read every 50 ms) and pins one standby poll and a margin
later. Prints the gap each handover reports (pin write to the new holder's first renewal, on the
operator's monotonic clock) as median, p99 and max; how long before the pin the announcement
went out; the worker-side dispatch gap (last run of the old leader to the first of the new);
overlap (runs of two tenures interleaved in slot order: must be 0); slots missed or doubled
(must be 0).

Part 2: crash failover. ``kill -9`` of the leading beat; the time until the worker receives the
first run from the other side, and slots missed or doubled. This part uses a SHORTER lease
(lease 5 s, renew 1 s, safe 3.5 s, default poll 1 s), because a standby may only take over after
seeing the lease unchanged for a whole lease: at the default 30 s lease the same measurement is
about 30 s plus up to one poll.

Everything is real: DynamoDB on a moto server, a redis-server broker, celery processes.

    .venv/bin/python bench/bench_handover.py
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test harness and servers live in tests/, not in a package

from beat_handover.beat_lock.dynamodb import create_table  # noqa: E402
from beat_handover.beat_lock.location import parse_lock_url  # noqa: E402
from beat_handover.beat_lock.stores import open_store  # noqa: E402
from beat_handover.handover.testing.lock_watch import leading_environment, live_participants  # noqa: E402
from tests.harness import Processes, Record, read_records, settled, wait_for  # noqa: E402
from tests.servers import free_port, start_moto_server  # noqa: E402

HANDOVERS = 20
APP = "tests.handover.app"
HANDOVER = str(Path(sys.executable).with_name("handover"))
CRASH_LEASE = {
    "BEAT_LOCK_LEASE_SECONDS": "5",
    "BEAT_LOCK_RENEW_SECONDS": "1",
    "BEAT_LOCK_SAFE_SECONDS": "3.5",
}
STARTUP_SECONDS = 90


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def runs_of(processes: Processes) -> list[Record]:
    return [r for r in read_records(processes.record_path) if r.entry == "every-second"]


class Bench:
    """One lock (a fresh DynamoDB table), its beats and a worker."""

    def __init__(self, directory: Path, broker: str, env: dict[str, str]) -> None:
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        create_table(self.name, "eu-west-2")
        url = f"dynamodb://{self.name}?region=eu-west-2"
        self.env = {
            "BEAT_LOCK_URL": url,
            "BEAT_LOCK_NAME": self.name,
            "TEST_BROKER_URL": broker,
            "TEST_QUEUE": self.name,
            **env,
        }
        self.store = open_store(parse_lock_url(url))
        directory.mkdir()
        self.processes = Processes(directory, APP, self.env)

    def leader(self) -> str | None:
        return leading_environment(self.store, self.name)

    def ecs_live(self) -> bool:
        return live_participants(self.store, self.name, "ecs") > 0

    def sent_since(self, environment: str, epoch: float) -> Record | None:
        """The first run ``environment`` dispatched that the worker received after ``epoch``."""
        return next(
            (
                r
                for r in runs_of(self.processes)
                if r.environment == environment and r.received_at > epoch
            ),
            None,
        )

    def start(self) -> None:
        self.processes.worker()
        paas = self.processes.beat("paas")
        wait_for(lambda: self.leader() == "paas", STARTUP_SECONDS, "paas to lead", paas)
        ecs = self.processes.beat("ecs")
        wait_for(self.ecs_live, STARTUP_SECONDS, "ecs to stand by", ecs)
        wait_for(lambda: self.sent_since("paas", 0), STARTUP_SECONDS, "the first run", paas)

    def handover(self, target: str) -> dict:
        result = subprocess.run(
            [HANDOVER, "-A", APP, "--to", target, "--json", "--timeout", "60s"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise SystemExit(
                f"handover --to {target} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return json.loads(result.stdout)

    def settle(self) -> list[Record]:
        """Stop the beats, then the worker's every-second runs once nothing more arrives."""
        beats = [proc for proc in self.processes.procs if "beat" in proc.name]
        settled(self.processes, *beats, quiet_seconds=2.0)
        return runs_of(self.processes)


def slot_figures(records: list[Record]) -> tuple[int, int, int]:
    """(slots missed between the first and last received, slots received twice, overlaps)."""
    counts = Counter(r.slot for r in records)
    slots = sorted(counts)
    expected = (slots[-1] - slots[0]) // timedelta(seconds=1) + 1
    missed = expected - len(slots)
    doubled = sum(n - 1 for n in counts.values())
    tenures = [r.token for r in sorted(records, key=lambda r: r.slot)]
    segments = 1 + sum(a != b for a, b in pairwise(tenures))
    overlaps = segments - len(set(tenures))  # a tenure seen in two separate stretches
    return missed, doubled, overlaps


def dispatch_gaps(records: list[Record]) -> list[float]:
    """Worker-side seconds between the last run of each tenure and the first of the next."""
    by_slot = sorted(records, key=lambda r: r.slot)
    return [b.received_at - a.received_at for a, b in pairwise(by_slot) if a.token != b.token]


def handovers(directory: Path, broker: str) -> None:
    bench = Bench(directory / "handovers", broker, {})
    try:
        bench.start()
        gaps, acquired, announced = [], [], []
        target = "ecs"
        for _ in range(HANDOVERS):
            started = time.time()
            report = bench.handover(target)
            gaps.append(report["gap_seconds"])
            acquired.append(report["acquired_after_seconds"])
            announced.append(report["announced_seconds"])
            wait_for(
                lambda t=target, s=started: bench.sent_since(t, s),
                60,
                f"{target} to dispatch",
                *bench.processes.procs,
            )
            target = "paas" if target == "ecs" else "ecs"
        records = bench.settle()
    finally:
        bench.processes.close()
    missed, doubled, overlaps = slot_figures(records)
    worker_gaps = dispatch_gaps(records)
    print(f"handovers: {HANDOVERS} at default timings (lease 30 s, renew 5 s, poll 1 s)")
    print(
        f"  reported gap  median {statistics.median(gaps):.3f} s   "
        f"p99 {percentile(gaps, 0.99):.3f} s   max {max(gaps):.3f} s   (of which the "
        f"standby's poll until it acquired: median {statistics.median(acquired):.3f} s)"
    )
    print(
        f"  announced before the pin  median {statistics.median(announced):.3f} s   "
        f"max {max(announced):.3f} s"
    )
    print(
        "  each (acquired, renewed) s: "
        + "  ".join(f"({a:.2f}, {g:.2f})" for a, g in zip(acquired, gaps, strict=True))
    )
    print(
        f"  worker-side dispatch gap (last run of old leader -> first of new)  median "
        f"{statistics.median(worker_gaps):.3f} s   max {max(worker_gaps):.3f} s"
    )
    print(
        f"  runs recorded {len(records)}   overlap {overlaps}   slots missed {missed}   "
        f"slots doubled {doubled}"
    )


def crash(directory: Path, broker: str) -> None:
    bench = Bench(directory / "crash", broker, CRASH_LEASE)
    try:
        bench.start()
        leader = next(p for p in bench.processes.procs if p.name.startswith("beat-paas"))
        killed_at = time.time()
        leader.kill()
        first = wait_for(
            lambda: bench.sent_since("ecs", killed_at),
            60,
            "ecs to dispatch",
            *bench.processes.procs,
        )
        later = time.time() + 2
        wait_for(lambda: bench.sent_since("ecs", later), 30, "ecs to keep going")
        records = bench.settle()
    finally:
        bench.processes.close()
    missed, doubled, _ = slot_figures(records)
    print(
        "crash failover: kill -9 of the leading beat (lease 5 s, renew 1 s, safe 3.5 s, poll 1 s)"
    )
    print(
        f"  kill -> first run from the other side received  {first.received_at - killed_at:.2f} s"
    )
    print(
        f"  slots doubled {doubled}   slots not sent {missed} (runs due while nobody led are "
        "sent if within the 5 s on-time grace; of older ones policy 'latest' sends the newest)"
    )


def main() -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("bench_handover needs redis-server on PATH (the broker)")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-handover-") as tmp:
        directory = Path(tmp)
        moto = start_moto_server(directory)
        os.environ.update(moto.env())
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=directory,
        )
        try:
            broker = f"redis://127.0.0.1:{port}/0"
            started = time.monotonic()
            handovers(directory, broker)
            crash(directory, broker)
            print(f"bench took {time.monotonic() - started:.0f} s")
        finally:
            redis.terminate()
            redis.wait(timeout=10)
            moto.stop()


if __name__ == "__main__":
    main()
