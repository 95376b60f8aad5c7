"""How long the quiet-window report takes: a 40-entry schedule (five every-minute entries) over
1, 7 and 30 days, and 1,000 entries over 7 days, all in Europe/London across the spring change.
Prints runs computed, seconds and microseconds per run: the cost per run stays flat, so the
total grows linearly with the number of runs.

    .venv/bin/python bench/bench_quiet.py
"""

from __future__ import annotations

import os
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import crontab

from beat_handover.scheduler import firetimes
from beat_handover.scheduler.quiet import quiet_windows

LONDON = ZoneInfo("Europe/London")
START = datetime(2026, 3, 23, tzinfo=LONDON)  # the week of the spring change (29 March)
ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
REPEATS = 3


def forty_entries() -> tuple[dict, dict]:
    schedule: dict = {f"check-{n}": crontab() for n in range(5)}
    schedule |= {f"quarter-{n}": crontab(minute=f"{n}-59/15") for n in range(10)}
    schedule |= {f"hourly-{n}": crontab(minute=n * 7) for n in range(8)}
    schedule |= {f"daily-{n}": crontab(minute=n * 5, hour=n + 1) for n in range(8)}
    schedule |= {
        "billing-nightly": crontab(minute=0, hour=2),
        "letters-weekday": crontab(minute=30, hour=17, day_of_week="mon-fri"),
        "weekly": crontab(minute=0, hour=5, day_of_week="sun"),
        "monthly": crontab(minute=0, hour=6, day_of_month=1),
    }
    intervals = {
        "heartbeat": 30,
        "queue-depth": 60,
        "cache-stats": 300,
        "token-refresh": 2700,
        "reconcile": 21600,
    }
    schedule |= {name: timedelta(seconds=seconds) for name, seconds in intervals.items()}
    return schedule, {name: ANCHOR for name in intervals}


def thousand_entries() -> tuple[dict, dict]:
    rng = random.Random(5)
    schedule: dict = {}
    anchors = {}
    for n in range(1000):
        kind = n % 50
        if kind == 0:
            entry = crontab()
        elif kind < 10:
            entry = crontab(minute=f"{rng.randrange(15)}-59/15")
        elif kind < 25:
            entry = crontab(minute=rng.randrange(60))
        elif kind < 40:
            entry = crontab(minute=rng.randrange(60), hour=rng.randrange(24))
        elif kind < 46:
            entry = crontab(
                minute=rng.randrange(60), hour=rng.randrange(24), day_of_week=rng.randrange(7)
            )
        else:
            entry = timedelta(seconds=rng.choice([60, 300, 900, 3600, 21600]))
            anchors[f"entry-{n}"] = ANCHOR + timedelta(seconds=rng.randrange(3600))
        schedule[f"entry-{n}"] = entry
    schedule["billing-nightly"] = crontab(minute=0, hour=2)
    return schedule, anchors


def measure(label: str, schedule: dict, anchors: dict, days: int, critical: list[str]) -> None:
    best = None
    for _ in range(REPEATS):
        # Cold caches each time: the figure is what one report costs, not a warmed-up loop.
        firetimes._firing_days.cache_clear()
        firetimes._day_offset.cache_clear()
        firetimes._hour_offset.cache_clear()
        began = time.perf_counter()
        report = quiet_windows(
            schedule,
            critical,
            START,
            START + timedelta(days=days),
            tz=LONDON,
            guard=timedelta(minutes=10),
            min_length=timedelta(minutes=15),
            anchors=anchors,
        )
        elapsed = time.perf_counter() - began
        best = elapsed if best is None else min(best, elapsed)
    runs = report.runs_computed
    print(
        f"{label:<22} {len(schedule):>7} {days:>5} {runs:>11,} {best:>9.3f} "
        f"{best / runs * 1e6:>8.2f}"
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    print(
        f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}; "
        f"best of {REPEATS}, cold caches"
    )
    print(f"{'schedule':<22} {'entries':>7} {'days':>5} {'runs':>11} {'seconds':>9} {'us/run':>8}")
    forty, forty_anchors = forty_entries()
    for days in (1, 7, 30):
        measure("40 entries", forty, forty_anchors, days, ["billing-nightly", "letters-*"])
    thousand, thousand_anchors = thousand_entries()
    measure("1,000 entries", thousand, thousand_anchors, 7, ["billing-nightly"])


if __name__ == "__main__":
    main()
