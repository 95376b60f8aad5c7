"""A real leased beat with thousands of every-minute crontab entries, its lease on a moto server:
how many runs of one minute slot it publishes, and how late.

    .venv/bin/python bench/bench_big_schedule.py [ENTRIES]      (default 3,000)

One ``celery beat -S leased`` process (``bench/big_schedule_app.py``) leads a fresh lock in a
table on a local moto server and publishes to a local redis-server, with no worker, so every run
stays in the queue. The figures: from the beat's log, how long it took from leading to
dispatching (reading, or fencing, every entry's last claim); then for the first whole minute slot
after dispatching began, how many of its runs the queue holds two minutes after the slot, and
when beat logged sending the first, the median and the last of them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.servers

import redis

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.layout import new_version
from beat_handover.handover.testing.processes import Processes, wait_for
from beat_handover.scheduler.headers import SLOT
from tests.servers import free_port, start_moto_server

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENTRIES = 3_000
WATCH_SECONDS = 120
QUEUE = "celery"


def log_times(log: str, marker: str) -> list[datetime]:
    """Times of the beat log lines containing ``marker`` (beat logs local time, to the ms)."""
    times = []
    for line in log.splitlines():
        if marker in line and line.startswith("["):
            stamp = line[1 : line.index(":", 20)]
            local = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone()
            times.append(local.astimezone(UTC))
    return times


def main() -> None:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ENTRIES
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        moto = start_moto_server(directory)
        redis_port = free_port()
        broker = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            run(directory, moto.env(), redis_port, entries)
        finally:
            broker.terminate()
            broker.wait()
            moto.stop()


def run(directory: Path, aws_env: dict[str, str], redis_port: int, entries: int) -> None:
    os.environ.update(aws_env)
    table = f"big-{new_version()}"
    create_table(table)
    env = {
        "BENCH_ENTRIES": str(entries),
        "BENCH_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BEAT_LOCK_URL": f"dynamodb://{table}",
        "BEAT_LOCK_NAME": "big",
    }
    with Processes(directory, "bench.big_schedule_app", env, cwd=ROOT) as procs:
        beat = procs.beat("paas")
        wait_for(lambda: beat.logged("dispatching"), 900, "beat to dispatch", beat)
        log = beat.log()
        leading = log_times(log, "lease leading")[0]
        dispatching = log_times(log, "dispatching lock=")[0]
        slot = (dispatching + timedelta(minutes=1)).replace(second=0, microsecond=0)
        print(
            f"{entries} every-minute entries: leading at {leading:%H:%M:%S.%f}, dispatching "
            f"{(dispatching - leading).total_seconds():.1f} s later; watching slot {slot:%H:%M}"
        )
        time.sleep(max(0.0, (slot + timedelta(seconds=WATCH_SECONDS)).timestamp() - time.time()))
        client = redis.Redis(port=redis_port)
        queued = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
        client.close()
        log = beat.log()
    of_slot = [m for m in queued if m["headers"].get(SLOT) == slot.isoformat()]
    sent = sorted(log_times(log, f"slot={slot.isoformat()} token="))
    print(
        f"runs of slot {slot:%H:%M} in the queue {WATCH_SECONDS} s after it: "
        f"{len(of_slot)} of {entries}"
    )
    if sent:
        late = [(when - slot).total_seconds() for when in sent]
        print(
            f"beat logged sending them {late[0]:.1f} s (first), {statistics.median(late):.1f} s "
            f"(median) and {late[-1]:.1f} s (last) after the slot"
        )
    by_slot = Counter(m["headers"].get(SLOT) for m in queued)
    print(
        "all runs in the queue, by slot: "
        + ", ".join(f"{s[11:16]} {n}" for s, n in sorted(by_slot.items()))
    )
    lines = log.splitlines()
    skipped = sum("skipped" in line and "late run" in line for line in lines)
    print(f"entries whose late runs beat skipped (WARNING lines): {skipped}")
    problems = [line for line in lines if "ERROR" in line or "Traceback" in line]
    print(
        f"ERROR lines in beat's log: {len(problems)}"
        + (f"; the first: {problems[0][:300]}" if problems else "")
    )


if __name__ == "__main__":
    main()
