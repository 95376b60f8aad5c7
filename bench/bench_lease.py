"""Lease latency and cost: acquire, renew and claim against a moto server and a redis-server on
this machine, requests per hour of a holder and a standby at the default durations, and what the
DynamoDB requests cost per month at on-demand prices.

    .venv/bin/python bench/bench_lease.py

Latencies are of one store call, client to server and back, on loopback: they measure this
code plus the local server, not AWS (DynamoDB in-region is typically single-digit ms).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.servers

import boto3

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from tests.servers import free_port, start_moto_server

SAMPLES = 150
HOURS_PER_MONTH = 730
# DynamoDB on-demand, us-east-1, since the price cut of 1 November 2024 (before it: twice this).
USD_PER_MILLION_WRITE_UNITS = Decimal("0.625")
USD_PER_MILLION_READ_UNITS = Decimal("0.125")
ENTRIES_IN_COST_TABLE = (0, 20, 100)


def timed(call: Callable[[int], object], samples: int = SAMPLES) -> tuple[float, float]:
    """Median and 99th percentile of ``call(i)`` in milliseconds."""
    took = []
    for i in range(samples):
        start = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def latencies(store: LeaseStore) -> dict[str, tuple[float, float]]:
    run = new_version()
    holder = Identity.new("paas")
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    figures = {
        "acquire": timed(
            lambda i: store.acquire(
                f"bench-{run}-{i}", holder, expected_version=None, new_version="v"
            )
        ),
    }
    name = f"bench-{run}-0"
    figures["renew"] = timed(lambda i: store.renew(name, holder, 1, new_version=f"r{i}"))
    figures["claim"] = timed(
        lambda i: store.claim(
            name, "letters", slot + timedelta(minutes=i), identity=holder, token=1, claim_id=f"c{i}"
        )
    )
    figures["read (standby poll)"] = timed(lambda i: store.read(name))
    figures["heartbeat"] = timed(
        lambda i: store.heartbeat(name, holder, role="leader", ttl_seconds=30, sequence=i)
    )
    return figures


def dynamodb_item_bytes(item: dict) -> int:
    """Size of an item as DynamoDB bills it: names plus values (numbers: about a byte per two
    digits, plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:
            size += (len(value["N"].lstrip("-").replace(".", "")) + 1) // 2 + 1
    return size


def lease_item_bytes(table: str, entries: int) -> int:
    """Bytes of a real lease item (written through the store) holding ``entries`` claims."""
    store = open_store(parse_lock_url(f"dynamodb://{table}"))
    holder = Identity.new("paas")
    name = f"sized-{entries}-{new_version()}"
    token = store.acquire(name, holder, expected_version=None, new_version=new_version())
    store.renew(name, holder, token, new_version=new_version())
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(entries):
        store.claim(
            name,
            f"app.tasks.scheduled_entry_{i:03d}",
            slot,
            identity=holder,
            token=token,
            claim_id=new_version(),
        )
    item = boto3.client("dynamodb").get_item(
        TableName=table,
        Key={"pk": {"S": f"lease#{name}"}, "sk": {"S": "lease"}},
        ConsistentRead=True,
    )["Item"]
    return dynamodb_item_bytes(item)


def units(size: int, per: int) -> int:
    return max(1, -(-size // per))


def main() -> None:
    timings = LeaseTimings()
    with tempfile.TemporaryDirectory() as scratch:
        moto = start_moto_server(Path(scratch))
        os.environ.update(moto.env())
        redis_port = free_port()
        redis_server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            table = f"bench-{new_version()}"
            create_table(table)
            time.sleep(0.3)  # redis-server is listening long before this
            stores = {
                "moto server (DynamoDB)": open_store(
                    parse_lock_url(f"dynamodb://{table}"), timings
                ),
                "redis-server": open_store(
                    parse_lock_url(f"redis://127.0.0.1:{redis_port}/0"), timings
                ),
            }
            results = {backend: latencies(store) for backend, store in stores.items()}
            sizes = {entries: lease_item_bytes(table, entries) for entries in ENTRIES_IN_COST_TABLE}
        finally:
            redis_server.terminate()
            redis_server.wait()
            moto.stop()
    report(timings, results, sizes)


def report(timings: LeaseTimings, results: dict, sizes: dict[int, int]) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    print(f"machine: {os.cpu_count()} CPUs, {cpu}; {SAMPLES} calls per figure, loopback\n")
    print(f"{'backend':24} {'operation':20} {'median ms':>10} {'p99 ms':>10}")
    for backend, figures in results.items():
        for operation, (median, p99) in figures.items():
            print(f"{backend:24} {operation:20} {median:10.2f} {p99:10.2f}")

    per_hour = 3600
    renewals = per_hour / timings.renew_seconds
    heartbeats = per_hour / timings.renew_seconds
    polls = per_hour / timings.poll_seconds
    print(
        f"\nrequests per hour at the defaults (lease {timings.lease_seconds:g} s, renew "
        f"{timings.renew_seconds:g} s, safe {timings.safe_seconds:g} s, poll "
        f"{timings.poll_seconds:g} s), claims not counted (one per scheduled run):"
    )
    print(
        f"  holder : {renewals + heartbeats:5.0f} writes ({renewals:.0f} renewals, "
        f"{heartbeats:.0f} heartbeats), no reads"
    )
    print(
        f"  standby: {heartbeats:5.0f} writes (heartbeats), {polls:.0f} strongly consistent "
        "reads (polls)"
    )

    print(
        f"\nDynamoDB on-demand cost per month ({HOURS_PER_MONTH} h), us-east-1 prices since "
        f"Nov 2024: ${USD_PER_MILLION_WRITE_UNITS} per million write request units, "
        f"${USD_PER_MILLION_READ_UNITS} per million read request units. A write costs one unit "
        "per started KB of the item, a strongly consistent read one per started 4 KB; the "
        "lease item grows with the schedule's entries (one claim record each):"
    )
    print(
        f"  {'entries':>7} {'lease item':>10} {'holder $/month':>15} {'standby $/month':>16} "
        f"{'pair $/month':>13} {'per claim $':>12}"
    )
    for entries, size in sizes.items():
        write_units, read_units = units(size, 1024), units(size, 4096)
        holder = Decimal(renewals * write_units + heartbeats) * HOURS_PER_MONTH
        standby_writes = Decimal(heartbeats) * HOURS_PER_MONTH
        standby_reads = Decimal(polls * read_units) * HOURS_PER_MONTH
        holder_usd = holder * USD_PER_MILLION_WRITE_UNITS / 1_000_000
        standby_usd = (
            standby_writes * USD_PER_MILLION_WRITE_UNITS
            + standby_reads * USD_PER_MILLION_READ_UNITS
        ) / 1_000_000
        claim_usd = write_units * USD_PER_MILLION_WRITE_UNITS / 1_000_000
        print(
            f"  {entries:7d} {size:8d} B {holder_usd:15.2f} {standby_usd:16.2f} "
            f"{holder_usd + standby_usd:13.2f} {claim_usd:12.7f}"
        )


if __name__ == "__main__":
    main()
