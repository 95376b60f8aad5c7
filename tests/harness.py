"""Real ``celery beat`` and ``celery worker`` processes for tests, and checks on what was received.

Start processes through a :class:`Processes` used as a context manager in a fixture, so every
process is killed at teardown whatever the test did (paused ones are resumed first)::

    @pytest.fixture
    def processes(tmp_path):
        with Processes(tmp_path, "tests.scheduler.app", {"TEST_BROKER_URL": broker}) as procs:
            yield procs

    def test_something(processes):
        worker = processes.worker()
        paas = processes.beat("paas", BEAT_LOCK_URL=url, BEAT_LOCK_NAME=name)
        wait_for(lambda: paas.logged("dispatching"), 30, "paas to lead", paas, worker)
        received = read_records(processes.record_path)
        each_slot_once(received)

Processes run from the repository root (so ``-A tests.scheduler.app`` imports), with the test
process's environment (the moto server's AWS_* variables included) plus what the test adds, and
write their output to a log file under the test's tmp_path. Beat gets ``--pidfile=`` and ``-s``
under tmp_path, so nothing is written in the repository. The test app's worker appends one JSON
line per received run to ``record_path`` (see tests/scheduler/app.py for the format).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class Proc:
    """One subprocess and its log file."""

    def __init__(self, name: str, popen: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        """A mark for :meth:`logged` (``after=``): only output written after now counts."""
        return self.log_path.stat().st_size

    def logged(self, text: str, *, after: int = 0) -> bool:
        with self.log_path.open("rb") as file:
            file.seek(after)
            return text.encode() in file.read()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (after SIGCONT, so a paused process dies at once) and reap."""
        self.resume()
        self.send(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def wait_exit(self, timeout: float) -> int:
        """The exit status; AssertionError (with the log's tail) if still running."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout:g}s\n{self.tail()}"
            ) from None

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log()[-chars:]}"


class Processes:
    """The subprocesses of one test; :meth:`close` kills every one."""

    def __init__(self, tmp_path: Path, app: str, env: Mapping[str, str]) -> None:
        self.dir = tmp_path
        self.app = app
        self.env = {
            **os.environ, **env, "PYTHONUNBUFFERED": "1",
            "TEST_RECORD_PATH": str(tmp_path / "records.jsonl"),
        }
        self.procs: list[Proc] = []

    @property
    def record_path(self) -> Path:
        return Path(self.env["TEST_RECORD_PATH"])

    def start(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        """``python -m celery -A APP *args`` with the shared environment plus ``env``."""
        log_path = self.dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", self.app, *args],
                cwd=ROOT, env={**self.env, **(env or {})},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def beat(self, environment: str, *, scheduler: str = "leased", name: str | None = None,
             **env: str) -> Proc:
        """``celery beat -S SCHEDULER`` with BEAT_LOCK_ENVIRONMENT=environment (unless ``env``
        sets it, e.g. to "" to test a missing environment)."""
        name = name or f"beat-{environment or 'none'}-{len(self.procs)}"
        env = {"BEAT_LOCK_ENVIRONMENT": environment, **env}
        if env["BEAT_LOCK_ENVIRONMENT"] is None:
            del env["BEAT_LOCK_ENVIRONMENT"]
        return self.start(
            name,
            ["beat", "-S", scheduler, "--pidfile=", "-s", str(self.dir / f"{name}-schedule"),
             "-l", "INFO"],
            env,
        )

    def worker(self, *, name: str | None = None, **env: str) -> Proc:
        """A solo-pool worker that records what it receives."""
        name = name or f"worker-{len(self.procs)}"
        return self.start(
            name,
            ["worker", "-P", "solo", "-c", "1", "-l", "INFO",
             "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env,
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tails(self) -> str:
        return "\n".join(proc.tail() for proc in self.procs)


def wait_for(condition: Callable[[], T], timeout: float, what: str, *show: Proc,
             interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes
    (AssertionError naming ``what``, with the logs of ``show``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(proc.tail() for proc in show)
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{logs}")
        time.sleep(interval)


@dataclass(frozen=True)
class Record:
    """One run the worker received."""

    task: str
    id: str
    entry: str | None
    slot: datetime | None
    environment: str | None
    token: int | None
    received_at: float  # epoch seconds, the worker's clock


def read_records(path: Path) -> list[Record]:
    """Every complete line of the recorder file, in the order received."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line.endswith("}"):
            continue  # a line still being written
        data: dict[str, Any] = json.loads(line)
        slot = datetime.fromisoformat(data["slot"]) if data.get("slot") else None
        records.append(Record(
            task=data["task"], id=data["id"], entry=data.get("entry"), slot=slot,
            environment=data.get("environment"), token=data.get("token"),
            received_at=data["received_at"],
        ))
    return records


def each_slot_once(records: Iterable[Record]) -> dict[str, list[datetime]]:
    """The received slots of each entry, ascending; AssertionError if any slot came twice."""
    counts = Counter((r.entry, r.slot) for r in records if r.entry is not None)
    doubled = sorted(((entry, slot.isoformat(), n) for (entry, slot), n in counts.items()
                      if n > 1))
    assert not doubled, f"slots received more than once (entry, slot, times): {doubled}"
    slots: dict[str, list[datetime]] = {}
    for entry, slot in counts:
        slots.setdefault(entry, []).append(slot)
    return {entry: sorted(found) for entry, found in slots.items()}


def interval_slots(first: datetime, step: timedelta, last: datetime) -> list[datetime]:
    """``first + k * step`` for k >= 0 up to ``last`` inclusive."""
    slots = []
    slot = first
    while slot <= last:
        slots.append(slot)
        slot += step
    return slots


def minute_slots(after: datetime, until: datetime) -> list[datetime]:
    """Whole UTC minutes in (after, until]: the fire times of ``crontab(minute="*")``."""
    slot = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return interval_slots(slot, timedelta(minutes=1), until)


def missing_and_extra(received: Iterable[datetime], expected: Iterable[datetime]
                      ) -> tuple[list[str], list[str]]:
    """Expected slots not received, and received slots not expected (as ISO strings)."""
    got, want = set(received), set(expected)
    return ([s.isoformat() for s in sorted(want - got)],
            [s.isoformat() for s in sorted(got - want)])


def utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
