"""What each store, broker and process fault does to the runs, with real beats (issue 11).

For each fault, a worker and two leased beats (paas, ecs) of ``tests/faults/app.py`` run three
one-second entries: ``guarded`` (its task is based on the worker-side guard), ``repeat-safe``
(named in ``beat_lock_repeat_safe``) and ``unguarded``. Each beat reaches the lock store and the
broker through a fault proxy; the fault is applied to whichever beat leads. Lease timings are
the tests' short ones (lease 2 s, renew 0.4 s, safe 1.5 s, poll 0.2 s). A line per fault:

    doubled=G/R/U      slots the worker executed twice (guarded / repeat-safe / unguarded)
    lost=G/R/U         slots never executed between each entry's first and last
    judged-in-doubt    claims of a former leader that the new leader found unacknowledged
    reported           slots in doubt kept in the store for an operator (the unguarded entry's)
    resent             slots in doubt sent again (the guarded and repeat-safe entries')
    worst-late         the latest any run due after the fault began was executed
    tenures            leaders that sent what was executed
    late-from-former   runs executed after a newer leader's (a former leader publishing late)

and for the Redis failover (a replica promoted by ``REPLICAOF NO ONE`` after missing the last
acknowledged claim), the slots a beat would have published twice, without and with
``beat_lock_redis_wait_replicas=1``.

    .venv/bin/python bench/bench_faults.py
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fault tools and the test app live in tests/

from beat_handover.beat_lock.dynamodb import create_table  # noqa: E402
from tests.faults.proxy import Fault  # noqa: E402
from tests.faults.redis_pair import claims_across_failover, redis_pair  # noqa: E402
from tests.faults.scenarios import FaultSession, Outcome  # noqa: E402
from tests.servers import free_port, start_moto_server  # noqa: E402

FAULT_SECONDS = 3.0


def scenarios() -> list[tuple[str, str, Callable[[FaultSession], None]]]:
    return [
        ("partition 3s", "redis", lambda s: s.store_fault(Fault.PARTITION, FAULT_SECONDS)),
        ("partition 3s", "dynamodb", lambda s: s.store_fault(Fault.PARTITION, FAULT_SECONDS)),
        (
            "answers delayed 1.5s",
            "redis",
            lambda s: s.store_fault(Fault.DELAY, FAULT_SECONDS, delay_seconds=1.5),
        ),
        (
            "answers delayed 1.5s",
            "dynamodb",
            lambda s: s.store_fault(Fault.DELAY, FAULT_SECONDS, delay_seconds=1.5),
        ),
        (
            "30% answers dropped",
            "redis",
            lambda s: s.store_fault(Fault.DROP_RESPONSES, 5.0, fraction=0.3),
        ),
        ("broker refusing 5s", "redis", lambda s: s.broker_fault(Fault.REFUSE, 5.0)),
        ("SIGSTOP mid-publish 3s", "redis", lambda s: s.pause_leader(FAULT_SECONDS)),
    ]


def run(
    directory: Path, fault: str, backend: str, act: Callable[[FaultSession], None], redis_port: int
) -> Outcome:
    name = f"bench{uuid.uuid4().hex[:10]}"
    if backend == "redis":
        lock_url, store_port = f"redis://127.0.0.1:{redis_port}/0", redis_port
    else:
        create_table(name, "eu-west-2")
        lock_url = f"dynamodb://{name}?region=eu-west-2"
        store_port = int(os.environ["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    with FaultSession(
        directory,
        backend=backend,
        lock_url=lock_url,
        name=name,
        store_port=store_port,
        broker_port=redis_port,
    ) as session:
        session.start()
        since = time.time()
        act(session)
        session.running(3)
        return session.outcome(fault, since)


def main() -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("bench_faults needs redis-server on PATH (lock store and broker)")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        moto = start_moto_server(directory)
        os.environ.update(moto.env())
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        python = platform.python_version()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}")
        try:
            for i, (fault, backend, act) in enumerate(scenarios()):
                workdir = directory / f"run{i}"
                workdir.mkdir()
                print(run(workdir, fault, backend, act, port).line(), flush=True)
            for wait in (0, 1):
                workdir = directory / f"failover{wait}"
                workdir.mkdir()
                with redis_pair(workdir) as pair:
                    published = claims_across_failover(pair, f"f{uuid.uuid4().hex[:8]}", wait)
                twice = sum(n > 1 for n in Counter(slot for _, slot in published).values())
                print(
                    f"{'redis failover':<24} {'wait=' + str(wait):<8} slots published twice="
                    f"{twice} (claims published: {len(published)})"
                )
        finally:
            redis.kill()
            redis.wait()
            moto.stop()


if __name__ == "__main__":
    main()
