"""Benchmark of the percentage routers, against a moto server it starts; prints its figures.

1. Cold start of each packaged handler, side by side with the same handler written the usual way
   (``import boto3`` and its clients at module level). Each run is a fresh interpreter that sees
   only the extracted zip (or the usual handler's one file) and the installed boto3, as the
   Lambda Python runtime does, and writes no bytecode (``/var/task`` is read-only there, so the
   zip's modules are compiled at every cold start). Two figures per run, each from before the
   first import: *ready* (import, config and clients built, nothing sent: the endpoints are the
   real AWS ones, never contacted) and *first call* (a fresh process: import and the first
   event, which reads the route item, and for SES receipts sends one message, on the moto
   server over HTTP, so no TLS is in it, for either side; the cost of the TLS context each side
   builds at its first HTTPS connection is printed after the table).
2. The warm path: one decision and one whole CloudFront origin-request call, against a handler
   that does nothing.
3. DynamoDB reads per container per hour at the default cache TTL.

    .venv/bin/python bench/bench_routers.py
"""

from __future__ import annotations

import copy
import os
import platform
import ssl
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.routers.cloudfront import make_handler
from beat_handover.routers.packaging import HANDLERS, build_zip
from beat_handover.routers.route_format import (
    RESOLUTION,
    QueueSide,
    Route,
    route_key,
    side_from_url,
)
from beat_handover.routers.route_store import create_route, dynamodb_client
from tests.servers import start_moto_server

REGION = "eu-west-2"
CALLS = 100_000
REPEATS = 5
COLD_RUNS = 9
TLS_RUNS = 21
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
            run(Path(scratch))
        finally:
            server.stop()


SNS_EVENT = {
    "Records": [
        {
            "EventSource": "aws:sns",
            "Sns": {
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "Message": '{"notificationType": "Delivery", "mail": {"messageId": "0100018f-1"}}',
            },
        }
    ]
}
# The same two handlers written the usual way: boto3 and its clients at module level.
USUAL_HANDLERS = {
    "cloudfront": """
import boto3

dynamodb = boto3.client("dynamodb", region_name={region!r})


def handler(event, context):
    dynamodb.get_item(TableName={table!r}, Key={key!r}).get("Item")
    return event["Records"][0]["cf"]["request"]
""",
    "ses_receipts": """
import boto3

dynamodb = boto3.client("dynamodb", region_name={region!r})
sqs = boto3.client("sqs", region_name={region!r})


def handler(event, context):
    dynamodb.get_item(TableName={table!r}, Key={key!r}).get("Item")
    for record in event["Records"]:
        sqs.send_message(QueueUrl={queue_url!r}, MessageBody=record["Sns"]["Message"])
""",
}
# Run in a fresh ``python -S``: the clock starts before anything but sys and time is imported.
TIMED = """import sys, time
start, start_cpu = time.perf_counter(), time.process_time()
sys.path[:0] = {paths!r}
{body}
print("seconds", time.perf_counter() - start, time.process_time() - start_cpu)
"""
OURS = {
    "ready": "import importlib\n"
    "module = importlib.import_module({module!r})\n"
    "from beat_handover.routers.config import packaged_config\n"
    "module.make_handler(packaged_config())",
    "first call": "import importlib\n"
    "module = importlib.import_module({module!r})\n"
    "module.handler({event!r}, None)",
}
USUAL = {
    "ready": "import usual_handler",
    "first call": "import usual_handler\nusual_handler.handler({event!r}, None)",
}


def timed_run(script: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of the timed part of ``script`` in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=env,
    )
    last = result.stdout.strip().splitlines()[-1:] or [""]
    if result.returncode != 0 or not last[0].startswith("seconds "):
        raise SystemExit(f"a cold-start run failed:\n{script}\n{result.stdout}\n{result.stderr}")
    wall, cpu = last[0].split()[1:]
    return float(wall), float(cpu)


def cold_starts(scratch: Path, configs: dict[str, dict], extra: dict[str, dict]) -> None:
    """Print the cold-start table and the zip sizes."""
    purelib = sysconfig.get_paths()["purelib"]
    events = {"cloudfront": EVENT, "ses_receipts": SNS_EVENT}
    base_env = {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    envs = {
        "ready": base_env,
        "first call": {**base_env, "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]},
    }
    scripts: dict[tuple[str, str, str], str] = {}
    sizes = {}
    for kind, config in configs.items():
        zip_path = build_zip(kind, config, scratch / "zips")
        sizes[zip_path.name] = zip_path.stat().st_size
        task_root = scratch / f"task-{kind}"  # where Lambda extracts the zip
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task_root)
        usual_root = scratch / f"usual-{kind}"
        usual_root.mkdir()
        (usual_root / "usual_handler.py").write_text(
            USUAL_HANDLERS[kind].format(region=REGION, **extra[kind])
        )
        module = HANDLERS[kind].rpartition(".")[0]
        for phase in ("ready", "first call"):
            for side, root, bodies in (("ours", task_root, OURS), ("usual", usual_root, USUAL)):
                body = bodies[phase].format(module=module, event=events[kind])
                scripts[kind, phase, side] = TIMED.format(paths=[str(root), purelib], body=body)
    took: dict[tuple[str, str, str], list[tuple[float, float]]] = {key: [] for key in scripts}
    for _ in range(COLD_RUNS):  # interleaved, so a busy moment hits both sides alike
        for key, script in scripts.items():
            took[key].append(timed_run(script, envs[key[1]]))
    print(
        f"cold start, ms, median of {COLD_RUNS} fresh interpreters each, interleaved: wall clock "
        "(CPU time of the process, steadier on a busy machine)"
    )
    print(f"  {'handler':<14} {'phase':<11} {'ours':>11} {'usual boto3':>12}  ours/usual")
    for kind in configs:
        for phase in ("ready", "first call"):
            wall, cpu = {}, {}
            for side in ("ours", "usual"):
                runs = took[kind, phase, side]
                wall[side] = statistics.median(run[0] for run in runs)
                cpu[side] = statistics.median(run[1] for run in runs)
            cells = [f"{wall[side] * 1000:4.0f} ({cpu[side] * 1000:3.0f})" for side in wall]
            ratios = f"{wall['ours'] / wall['usual']:.2f} ({cpu['ours'] / cpu['usual']:.2f})"
            print(f"  {kind:<14} {phase:<11} {cells[0]:>11} {cells[1]:>12}  {ratios}")
    for name, size in sizes.items():
        print(f"  zip {name}: {size:,} bytes")
    ours, usual = tls_context_seconds()
    print(
        f"  not in the figures above (the moto server speaks plain HTTP): the TLS context each "
        f"side builds at its first HTTPS connection, median of {TLS_RUNS}: ours "
        f"(ssl.create_default_context, the system's CA bundle) {ours * 1000:.0f} ms, boto3's "
        f"(urllib3's context, certifi's bundle) {usual * 1000:.0f} ms"
    )


def tls_context_seconds() -> tuple[float, float]:
    """Building a verifying TLS context: loading the CA certificates is nearly all of it."""
    from botocore.httpsession import create_urllib3_context, get_cert_path

    def boto3s() -> None:
        create_urllib3_context().load_verify_locations(get_cert_path(True))

    took: dict[Callable[[], object], list[float]] = {ssl.create_default_context: [], boto3s: []}
    for _ in range(TLS_RUNS):
        for build, runs in took.items():
            started = time.perf_counter()
            build()
            runs.append(time.perf_counter() - started)
    ours, usual = (statistics.median(runs) for runs in took.values())
    return ours, usual


def run(scratch: Path) -> None:
    client = dynamodb_client(REGION)
    table = "bench-routes"
    create_table(table, REGION)
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
    sqs = boto3.client("sqs", region_name=REGION)
    old, new = (
        QueueSide(label, sqs.create_queue(QueueName=f"bench-{label}")["QueueUrl"])
        for label in ("paas", "ecs")
    )
    create_route(
        client,
        table,
        Route("mail", "ses_receipts", Decimal(50), old, new),
        reason="bench",
        actor="bench",
        host="localhost",
    )
    cold_starts(
        scratch,
        {
            "cloudfront": {"route": "web", "table": table, "region": REGION},
            "ses_receipts": {
                "route": "mail",
                "table": table,
                "region": REGION,
                "fallback_side": {"label": "paas", "queue_url": old.queue_url},
            },
        },
        {
            "cloudfront": {"table": table, "key": route_key("web")},
            "ses_receipts": {"table": table, "key": route_key("mail"), "queue_url": new.queue_url},
        },
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
