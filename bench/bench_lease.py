"""What the lease costs as the schedule grows: item sizes, capacity units per renewal, standby poll
and claim, claim latency, and the monthly DynamoDB bill at the default durations, for schedules of
0, 100, 1,000 and 10,000 entries; what a new leader's fence costs, once per tenure; then the
latency of every store call on both backends.

    .venv/bin/python bench/bench_lease.py

Units. moto does not bill: it reports a fixed 1.0 (0.5 for GetItem) whatever the item's size, and
nothing at all for UpdateItem (moto 5.2, ``include_consumed_capacity`` in its responses.py). So the
units here are computed from the items as stored, by AWS's documented rule: a write costs one unit
per started KB of the larger of the item before and after it; a read one unit per started 4 KB,
half that when eventually consistent. Where dynalite is installed (``make test`` installs it), the
same requests are replayed on it with ``ReturnConsumedCapacity=TOTAL``, and the units it reports
(dynalite implements that rule) are printed beside the computed ones.

Latencies are of one store call, client to server and back, on loopback: they measure this code
plus a local emulator, not AWS (DynamoDB in-region is typically single-digit ms). The fence is
timed on dynalite, not moto: moto's Query reads the whole partition for every page (2.5 s a
1,000-item page at 10,000 items here, past the request timeout), and both serve the fence's
concurrent writes one at a time, where DynamoDB does not.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.servers

import boto3

from beat_handover.beat_lock import keys
from beat_handover.beat_lock.dynamodb import KEY_SCHEMA, DynamoDBStore, create_table
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import ClaimResult
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from tests.servers import dynalite_missing, free_port, start_dynalite, start_moto_server

SAMPLES = 150
CLAIM_SAMPLES = 40
ENTRY_COUNTS = (0, 100, 1_000, 10_000)
HOURS_PER_MONTH = 730
# DynamoDB on-demand, us-east-1, since the price cut of 1 November 2024 (before it: twice this).
USD_PER_MILLION_WRITE_UNITS = Decimal("0.625")
USD_PER_MILLION_READ_UNITS = Decimal("0.125")
SLOT = datetime(2026, 1, 1, tzinfo=UTC)
MEASURED, TIMED = "app.tasks.measured", "app.tasks.timed"  # claimed while measuring


def entry_name(i: int) -> str:
    """Entry names as a Django app's schedule has them: the task path and a number."""
    return f"app.tasks.scheduled_entry_{i:05d}"


def timed(call: Callable[[int], object], samples: int = SAMPLES) -> tuple[float, float]:
    """Median and 99th percentile of ``call(i)`` in milliseconds."""
    took = []
    for i in range(samples):
        start = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def dynamodb_item_bytes(item: dict) -> int:
    """Size of an item as DynamoDB bills it: attribute names plus values (numbers: about a byte
    per two significant digits, plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:
            size += (len(value["N"].lstrip("-").replace(".", "")) + 1) // 2 + 1
    return size


def write_units(*sizes: int) -> int:
    return max(1, -(-max(sizes) // 1024))


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, -(-size // 4096))
    return units if consistent else units / 2


class CapacityMeter:
    """Asks for ConsumedCapacity on every request of one boto3 client and adds up the answers
    (a bench-side botocore hook: the product never asks for it)."""

    def __init__(self, client: Any) -> None:
        self.total: float | None = None
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb.*", self._ask)
        client.meta.events.register("after-call.dynamodb.*", self._keep)

    def _ask(self, params: dict, **_: Any) -> None:
        if "TableName" in params:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def _keep(self, parsed: dict, **_: Any) -> None:
        capacity = parsed.get("ConsumedCapacity")
        if isinstance(capacity, dict):
            with self._lock:
                self.total = (self.total or 0.0) + capacity.get("CapacityUnits", 0.0)

    def units(self, call: Callable[[], object]) -> float | None:
        """Units reported for the requests ``call`` makes (None if none reported any)."""
        self.total = None
        call()
        return self.total


@dataclass
class Row:
    """Figures for one schedule size."""

    entries: int
    fits: bool = True
    note: str = ""
    lease_bytes: int = 0
    claim_bytes: int = 0
    renew_units: int = 0
    poll_units: float = 0.0
    claim_units: int = 0
    reported: dict[str, float | None] = field(default_factory=dict)
    claim_ms: tuple[float, float] = (0.0, 0.0)
    fence_writes: int = 0  # a new leader's fence: one write per claim item, one on the lease
    fence_reads: float = 0.0  # its consistent Query of the claim items and read of the lease
    fence_seconds: float = 0.0


@dataclass
class Lock:
    """A lock held by ``holder`` with ``token``, in one store."""

    store: LeaseStore
    table: str
    client: Any
    name: str
    holder: Identity
    token: int


def held_lock(store: LeaseStore, table: str, client: Any) -> Lock:
    holder = Identity.new("paas")
    name = f"sized-{new_version()}"
    token = store.acquire(name, holder, expected_version=None, new_version=new_version())
    store.renew(name, holder, token, new_version=new_version())
    return Lock(store, table, client, name, holder, token)


def claim(lock: Lock, entry: str, slot: datetime) -> ClaimResult:
    return lock.store.claim(
        lock.name, entry, slot, identity=lock.holder, token=lock.token, claim_id=new_version()
    )


def fill(lock: Lock, entries: int) -> str:
    """Fence and claim one slot of each of ``entries`` entries through the store, as a leader
    would; returns why it stopped early, or ''."""
    names = [entry_name(i) for i in range(entries)]
    lock.store.fence(
        lock.name,
        [*names, MEASURED, TIMED],
        identity=lock.holder,
        token=lock.token,
        everything=True,
    )
    for name in names:
        claim(lock, name, SLOT)
    return ""


def take_over(lock: Lock) -> Lock:
    """``handover --to ecs`` on ``lock``: the new leader holds it, not fenced yet."""
    ecs = Identity.new("ecs")
    lock.store.pin(
        lock.name, "ecs", expected_token=lock.token, new_version=new_version(), end_tenure=True
    )
    token = lock.store.acquire(lock.name, ecs, expected_version=None, new_version=new_version())
    return Lock(lock.store, lock.table, lock.client, lock.name, ecs, token)


def fence_all(lock: Lock) -> object:
    return lock.store.fence(lock.name, [], identity=lock.holder, token=lock.token, everything=True)


def stored_item(lock: Lock, pk: str, sk: str) -> dict:
    return lock.client.get_item(
        TableName=lock.table,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        ConsistentRead=True,
    ).get("Item", {})


def measure(lock: Lock, row: Row) -> None:
    """Sizes of the lease and claim items at this schedule size, and the units of renewal,
    poll, claim and a new leader's fence they make by AWS's rule."""
    lease = stored_item(lock, keys.partition(keys.LEASE, lock.name), keys.LEASE_SORT_KEY)
    claimed = stored_item(lock, keys.partition(keys.CLAIM, lock.name), entry_name(0))
    if not claimed:  # no entries: the size of a claim item of the same shape
        claim(lock, MEASURED, SLOT)
        claimed = stored_item(lock, keys.partition(keys.CLAIM, lock.name), MEASURED)
    row.lease_bytes = dynamodb_item_bytes(lease)
    row.claim_bytes = dynamodb_item_bytes(claimed)
    row.renew_units = write_units(row.lease_bytes)
    row.poll_units = read_units(row.lease_bytes, consistent=False)
    row.claim_units = write_units(row.claim_bytes)
    items = row.entries + 2  # the schedule's entries, MEASURED and TIMED
    row.fence_writes = items * write_units(row.claim_bytes) + write_units(row.lease_bytes)
    row.fence_reads = read_units(row.lease_bytes, consistent=True) + read_units(
        items * row.claim_bytes, consistent=True
    )


def replay(lock: Lock, row: Row, meter: CapacityMeter) -> None:
    """The same requests on dynalite, with the units it reports; then a handover and the new
    leader's fence, timed."""
    row.reported = {
        "renew": meter.units(
            lambda: lock.store.renew(lock.name, lock.holder, lock.token, new_version=new_version())
        ),
        "poll": meter.units(lambda: lock.store.read(lock.name, consistent=False)),
        "claim": meter.units(lambda: claim(lock, MEASURED, SLOT + timedelta(days=1))),
    }
    successor = take_over(lock)
    started = time.perf_counter()
    row.reported["fence"] = meter.units(lambda: fence_all(successor))
    row.fence_seconds = time.perf_counter() - started


def claim_latency(lock: Lock) -> tuple[float, float]:
    """Claims of one entry's next slots, at this schedule size."""

    def claimed(i: int) -> None:
        result = claim(lock, TIMED, SLOT + timedelta(minutes=i + 1))
        if not result.claimed:
            raise RuntimeError(f"the timed claim was refused: {result.reason}")

    return timed(claimed, CLAIM_SAMPLES)


def sized_rows(moto_store: LeaseStore, table: str, dynalite: DynamoDBStore | None) -> list[Row]:
    moto_client = boto3.client("dynamodb")
    dynalite_client = dynalite.client if dynalite is not None else None
    meter = CapacityMeter(dynalite_client) if dynalite_client is not None else None
    rows = []
    for entries in ENTRY_COUNTS:
        row = Row(entries)
        lock = held_lock(moto_store, table, moto_client)
        started = time.perf_counter()
        row.note = fill(lock, entries)
        print(f"  filled {entries} entries on moto in {time.perf_counter() - started:.0f} s")
        if row.note:
            row.fits = False
            rows.append(row)
            continue
        measure(lock, row)
        row.claim_ms = claim_latency(lock)
        if dynalite is not None:
            twin = held_lock(dynalite, table, dynalite_client)
            fill(twin, entries)
            replay(twin, row, meter)
        rows.append(row)
    return rows


def latencies(store: LeaseStore) -> dict[str, tuple[float, float]]:
    run = new_version()
    holder = Identity.new("paas")
    figures = {
        "acquire": timed(
            lambda i: store.acquire(
                f"bench-{run}-{i}", holder, expected_version=None, new_version="v"
            )
        ),
    }
    name = f"bench-{run}-0"
    figures["renew"] = timed(lambda i: store.renew(name, holder, 1, new_version=f"r{i}"))
    store.fence(name, ["letters"], identity=holder, token=1, everything=True)
    figures["claim"] = timed(
        lambda i: store.claim(
            name, "letters", SLOT + timedelta(minutes=i), identity=holder, token=1, claim_id=f"c{i}"
        )
    )
    figures["read (standby poll)"] = timed(lambda i: store.read(name, consistent=False))
    figures["heartbeat"] = timed(
        lambda i: store.heartbeat(name, holder, role="leader", ttl_seconds=30, sequence=i)
    )
    return figures


@contextmanager
def servers(scratch: Path) -> Iterator[tuple[str, int, DynamoDBStore | None]]:
    """A moto server (in os.environ), a redis-server and dynalite if installed."""
    moto = start_moto_server(scratch)
    os.environ.update(moto.env())
    redis_port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    dynalite = None if dynalite_missing() else start_dynalite(scratch)
    table = f"bench-{new_version()}"
    try:
        create_table(table)
        twin = None
        if dynalite is not None:
            boto3.client("dynamodb", endpoint_url=dynalite.url).create_table(
                TableName=table,
                KeySchema=KEY_SCHEMA,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": key["AttributeName"], "AttributeType": "S"}
                    for key in KEY_SCHEMA
                ],
            )
            twin = DynamoDBStore(
                parse_lock_url(f"dynamodb://{table}"), LeaseTimings(), endpoint_url=dynalite.url
            )
        yield table, redis_port, twin
    finally:
        if dynalite is not None:
            dynalite.stop()
        redis_server.terminate()
        redis_server.wait()
        moto.stop()


def main() -> None:
    timings = LeaseTimings()
    with tempfile.TemporaryDirectory() as scratch, servers(Path(scratch)) as running:
        table, redis_port, dynalite = running
        moto_store = open_store(parse_lock_url(f"dynamodb://{table}"), timings)
        print("filling schedules (a fence, then one claim per entry, through the store):")
        rows = sized_rows(moto_store, table, dynalite)
        stores = {
            "moto server (DynamoDB)": moto_store,
            "redis-server": open_store(
                parse_lock_url(f"redis://127.0.0.1:{redis_port}/0"), timings
            ),
        }
        results = {backend: latencies(store) for backend, store in stores.items()}
    report(timings, rows, results, dynalite is not None)


def monthly_usd(timings: LeaseTimings, row: Row) -> tuple[Decimal, Decimal]:
    """(holder, standby) dollars a month: renewals and heartbeats (one unit each: a heartbeat
    item is well under 1 KB) of the holder; heartbeats and polls of one standby."""
    hours = Decimal(HOURS_PER_MONTH)
    renewals = Decimal(3600 / timings.renew_seconds)
    heartbeats = Decimal(3600 / timings.renew_seconds)
    polls = Decimal(3600 / timings.poll_seconds)
    holder_writes = (renewals * row.renew_units + heartbeats) * hours
    standby_writes = heartbeats * hours
    standby_reads = polls * Decimal(str(row.poll_units)) * hours
    holder = holder_writes * USD_PER_MILLION_WRITE_UNITS / 1_000_000
    standby = (
        standby_writes * USD_PER_MILLION_WRITE_UNITS + standby_reads * USD_PER_MILLION_READ_UNITS
    ) / 1_000_000
    return holder, standby


def units(row: Row, computed: float, operation: str) -> str:
    """Computed units, and in brackets those dynalite reported for the same request."""
    reported = row.reported.get(operation)
    return f"{computed:g}" + (f" [{reported:g}]" if reported is not None else "")


def report(
    timings: LeaseTimings,
    rows: list[Row],
    results: dict[str, dict[str, tuple[float, float]]],
    replayed: bool,
) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    print(f"\nmachine: {os.cpu_count()} CPUs, {cpu}; loopback\n")
    print(
        f"Per schedule size, at the defaults (lease {timings.lease_seconds:g} s, renew "
        f"{timings.renew_seconds:g} s, poll {timings.poll_seconds:g} s); units computed from "
        "the stored items by AWS's rule"
        + ("; in brackets, what dynalite reports for the same requests" if replayed else "")
        + f"; claim latency over {CLAIM_SAMPLES} claims on the moto server; DynamoDB on-demand "
        f"us-east-1 (${USD_PER_MILLION_WRITE_UNITS}/M writes, ${USD_PER_MILLION_READ_UNITS}/M "
        "reads), one holder and one standby, claims not included:"
    )
    header = (
        f"{'entries':>7} {'lease item':>10} {'claim item':>10} {'renew WU':>12} {'poll RU':>12} "
        f"{'claim WU':>12} {'claim ms p50/p99':>17} {'holder $/mo':>11} {'standby $/mo':>12} "
        f"{'pair $/mo':>9}"
    )
    print(header)
    for row in rows:
        if not row.fits:
            print(f"{row.entries:7d}  does not fit: {row.note[:150]}")
            continue
        holder, standby = monthly_usd(timings, row)

        print(
            f"{row.entries:7d} {row.lease_bytes:8d} B {row.claim_bytes:8d} B "
            f"{units(row, row.renew_units, 'renew'):>12} {units(row, row.poll_units, 'poll'):>12} "
            f"{units(row, row.claim_units, 'claim'):>12} "
            f"{row.claim_ms[0]:8.1f}/{row.claim_ms[1]:<8.1f} {holder:11.2f} {standby:12.2f} "
            f"{holder + standby:9.2f}"
        )

    print(
        "\nA new leader's fence, once per tenure (handover --to ecs, then ecs fences every "
        "claim item): units computed by AWS's rule"
        + (
            " [dynalite: reads and writes together], its price, and how long it took on dynalite"
            if replayed
            else ", its price"
        )
        + ":"
    )
    print(f"{'entries':>7} {'write units':>11} {'read units':>10} {'units':>18} {'$':>9} {'s':>6}")
    for row in rows:
        if not row.fits:
            continue
        usd = (
            row.fence_writes * USD_PER_MILLION_WRITE_UNITS
            + Decimal(str(row.fence_reads)) * USD_PER_MILLION_READ_UNITS
        ) / 1_000_000
        reported = row.reported.get("fence")
        print(
            f"{row.entries:7d} {row.fence_writes:11d} {row.fence_reads:10g} "
            f"{(f'[{reported:g}]' if reported is not None else ''):>18} {usd:9.5f} "
            + (f"{row.fence_seconds:6.1f}" if reported is not None else "     -")
        )

    print(f"\nOne store call ({SAMPLES} calls per figure), small lock:")
    print(f"{'backend':24} {'operation':20} {'median ms':>10} {'p99 ms':>10}")
    for backend, figures in results.items():
        for operation, (median, p99) in figures.items():
            print(f"{backend:24} {operation:20} {median:10.2f} {p99:10.2f}")


if __name__ == "__main__":
    main()
