"""Benchmark of the percentage routers: the warm-path cost of a decision and of a whole CloudFront
origin-request call (against a handler that does nothing), and DynamoDB reads per container per
hour at the default cache TTL. Runs against a moto server it starts; prints its figures.

    .venv/bin/python bench/bench_routers.py
"""

from __future__ import annotations

import copy
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beat_handover.routers.cloudfront import make_handler
from beat_handover.routers.route_format import RESOLUTION, Route, side_from_url
from beat_handover.routers.route_store import create_route, dynamodb_client
from tests.servers import start_moto_server

REGION = "eu-west-2"
CALLS = 100_000
REPEATS = 5
EVENT = {
    "Records": [
        {
            "cf": {
                "request": {
                    "clientIp": "203.0.113.178",
                    "method": "GET",
                    "uri": "/",
                    "querystring": "",
                    "headers": {
                        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                        "cookie": [{"key": "Cookie", "value": "theme=dark; visitor=v-12345"}],
                    },
                    "origin": {
                        "custom": {
                            "customHeaders": {},
                            "domainName": "paas.example.com",
                            "keepaliveTimeout": 5,
                            "path": "",
                            "port": 443,
                            "protocol": "https",
                            "readTimeout": 30,
                            "sslProtocols": ["TLSv1.2"],
                        }
                    },
                }
            }
        }
    ]
}


def best_seconds_per_call(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(CALLS):
            call()
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}, "
        f"load average {load:.2f} at start"
    )


def main() -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        server = start_moto_server(Path(scratch))
        os.environ.update(server.env())
        try:
            run()
        finally:
            server.stop()


def run() -> None:
    client = dynamodb_client(REGION)
    table = "bench-routes"
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    from decimal import Decimal

    create_route(
        client,
        table,
        Route(
            "web",
            "cloudfront",
            Decimal("12.5"),
            side_from_url("cloudfront", "paas", "https://paas.example.com", where="old"),
            side_from_url("cloudfront", "ecs", "https://ecs.example.com", where="new"),
        ),
        reason="bench",
        actor="bench",
        host="localhost",
    )
    config = {"route": "web", "table": table, "region": REGION, "sticky_cookie": "visitor"}

    handler = make_handler(config, emit=lambda line: None)
    switch = handler.switch
    event = copy.deepcopy(EVENT)
    handler(event, None)  # first call reads the route: the cold path, not measured

    def nothing(event: dict, context: object) -> dict:
        return event["Records"][0]["cf"]["request"]

    keyless = best_seconds_per_call(lambda: switch.decide(None))
    keyed = best_seconds_per_call(lambda: switch.decide("v-12345"))
    full = best_seconds_per_call(lambda: handler(event, None))
    empty = best_seconds_per_call(lambda: nothing(event, None))
    print(f"warm path, best of {REPEATS} x {CALLS:,} calls:")
    for label, seconds in [
        ("switch.decide(no key)", keyless),
        ("switch.decide(key)", keyed),
        ("CloudFront handler (sticky cookie)", full),
        ("handler that does nothing", empty),
    ]:
        print(f"  {label:<36} {seconds * 1e6:7.2f} us/call  {1 / seconds:>12,.0f} calls/s")
    print(
        f"  CloudFront handler / do-nothing handler: {full / empty:.1f}x "
        f"(+{(full - empty) * 1e6:.2f} us per request)"
    )

    clock_now = [0.0]
    hour_handler = make_handler(config, clock=lambda: clock_now[0], emit=lambda line: None)
    reads = []
    real_reader = hour_handler.switch.reader

    def counting_reader() -> object:
        reads.append(clock_now[0])
        return real_reader()

    hour_handler.switch.reader = counting_reader
    requests_per_second = 50
    for step in range(3600 * requests_per_second):
        clock_now[0] = step / requests_per_second
        hour_handler(event, None)
    ttl = hour_handler.switch.cache_ttl_seconds
    print(
        f"one container, one simulated hour at {requests_per_second} requests/s "
        f"(default cache TTL {ttl:g} s): {len(reads)} DynamoDB reads "
        f"(3600 / TTL = {3600 / ttl:g}); resolution 1/{RESOLUTION:,} = 0.0001 %"
    )


if __name__ == "__main__":
    main()
