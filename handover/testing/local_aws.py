"""AWS on this machine: a moto server (DynamoDB, SQS and the rest) in a process of its own, with
fake credentials, for the demo, the tests and the benchmarks. Needs ``moto[server]`` (installed
by ``make demo`` and ``make test``), never an AWS account.

The server runs as a separate process, not a thread, so it can be paused (SIGSTOP: requests hang,
state kept) to make the store unreachable, and so no caller's GIL serialises its requests.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.testing.processes import free_port, spawn

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-2",
    "AWS_REGION": "eu-west-2",
}


@dataclass
class ServerProcess:
    """A server in a process (and session) of its own, on a loopback port."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        """Make the server unreachable without losing its state: requests hang until resume()."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class MotoServer(ServerProcess):
    """A moto server: DynamoDB and SQS (and the rest of AWS) over HTTP."""

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and child processes) at this server."""
        return {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": self.url}

    def reset(self) -> None:
        """Forget every table and queue (moto's reset API)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        ).read()


def start_moto_server(log_dir: Path, *, timeout_seconds: float = 30.0) -> MotoServer:
    """Start ``python -m moto.server`` on a free loopback port; fail loudly if it is silent."""
    if importlib.util.find_spec("moto") is None:
        raise ConfigError(
            "the moto server is not installed in this Python; install the test extra "
            "(pip install -e '.[test]'; make demo and make test do it)"
        )
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    proc = spawn(
        "moto server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path,
        env={**os.environ, **FAKE_AWS_ENV},
    )
    server = MotoServer(proc.popen, port, log_path)

    def answers() -> None:
        urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=1).read()

    await_server("moto server", server, answers, timeout_seconds)
    return server


def await_server(
    what: str,
    server: ServerProcess,
    answers: Callable[[], None],
    timeout_seconds: float,
) -> None:
    """Wait until ``answers()`` stops raising OSError; stop the server and fail loudly if it
    exits or stays silent."""
    process, log_path = server.process, server.log_path
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with status {process.returncode} before answering; "
                f"its log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}"
            )
        try:
            answers()
            return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"{what} on port {server.port} did not answer within {timeout_seconds:.0f}s; "
        f"its log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}"
    )
