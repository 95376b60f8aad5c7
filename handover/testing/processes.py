"""Subprocesses that are always cleaned up: real ``celery beat`` and ``celery worker`` processes
for the demo, the tests and the benchmarks, each with a log file and its own process group.

Use :class:`Processes` as a context manager; leaving it kills every process it started (paused
ones are resumed first), however the block ended::

    with Processes(directory, "proj", {"BEAT_LOCK_URL": url}) as procs:
        worker = procs.worker()
        paas = procs.beat("paas")
        wait_for(lambda: paas.logged("dispatching"), 30, "paas to lead", paas, worker)

Each process starts a session of its own, so a Ctrl-C at the terminal reaches only the program
that started it (which then stops them in order), and killing a process kills its process group
(a prefork worker's children too). Beat gets ``--pidfile=`` and ``-s`` under the directory, so
nothing is written where the command runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
KILL_WAIT_SECONDS = 30.0


class WaitTimedOut(AssertionError):
    """A condition waited for by :func:`wait_for` did not come true in time. An AssertionError,
    so a test that waits fails as a failed assertion, with the logs attached."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """One subprocess, the leader of its own process group, and its log file."""

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
        """Send ``signum`` to the process itself (not its group)."""
        if self.alive():
            os.kill(self.pid, signum)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the process group (after SIGCONT, so a paused process dies at once) and
        reap the process."""
        self.resume()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Only a group this process leads: never the group of whoever started it.
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=KILL_WAIT_SECONDS)

    def wait_exit(self, timeout: float) -> int:
        """The exit status; WaitTimedOut (with the log's tail) if still running."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimedOut(
                f"{self.name} still running after {timeout:g}s\n{self.tail()}"
            ) from None

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log()[-chars:]}"


def spawn(
    name: str, argv: list[str], log_path: Path, *, env: Mapping[str, str], cwd: Path | None = None
) -> Proc:
    """Start ``argv`` in a new session, its output (stdout and stderr) appended to
    ``log_path``, stdin closed."""
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, popen, log_path)


class Processes:
    """The celery processes of one app; :meth:`close` kills every one."""

    def __init__(
        self, directory: Path, app: str, env: Mapping[str, str], *, cwd: Path | None = None
    ) -> None:
        self.dir = directory
        self.app = app
        self.cwd = cwd
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.procs: list[Proc] = []

    def start(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        """``python -m celery -A APP *args`` with the shared environment plus ``env``."""
        proc = spawn(
            name,
            [sys.executable, "-m", "celery", "-A", self.app, *args],
            self.dir / f"{name}.log",
            env={**self.env, **(env or {})},
            cwd=self.cwd,
        )
        self.procs.append(proc)
        return proc

    def beat(
        self,
        environment: str | None,
        *,
        scheduler: str = "leased",
        name: str | None = None,
        **env: str,
    ) -> Proc:
        """``celery beat -S SCHEDULER`` with BEAT_LOCK_ENVIRONMENT=environment (unless ``env``
        sets it, e.g. to "" to test a missing environment; None leaves it unset)."""
        name = name or f"beat-{environment or 'none'}-{len(self.procs)}"
        env = {"BEAT_LOCK_ENVIRONMENT": environment, **env}
        if env["BEAT_LOCK_ENVIRONMENT"] is None:
            del env["BEAT_LOCK_ENVIRONMENT"]
        return self.start(
            name,
            [
                "beat",
                "-S",
                scheduler,
                "--pidfile=",
                "-s",
                str(self.dir / f"{name}-schedule"),
                "-l",
                "INFO",
            ],
            env,
        )

    def worker(self, *, name: str | None = None, **env: str) -> Proc:
        """A solo-pool worker (one process) without gossip, mingle or heartbeats."""
        name = name or f"worker-{len(self.procs)}"
        return self.start(
            name,
            [
                "worker",
                "-P",
                "solo",
                "-c",
                "1",
                "-l",
                "INFO",
                "-n",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env,
        )

    def close(self) -> None:
        """Kill every process started, newest first."""
        for proc in reversed(self.procs):
            proc.kill()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tails(self) -> str:
        return "\n".join(proc.tail() for proc in self.procs)


def wait_for(
    condition: Callable[[], T], timeout: float, what: str, *show: Proc, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes
    (WaitTimedOut naming ``what``, with the logs of ``show``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(proc.tail() for proc in show)
            raise WaitTimedOut(f"timed out after {timeout:g}s waiting for {what}\n{logs}")
        time.sleep(interval)
