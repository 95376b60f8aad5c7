"""Real servers for tests and benchmarks: a moto server (DynamoDB + SQS) in its own process.

The moto server runs as a separate process, not a thread of the test run, so a test can pause it
(SIGSTOP: requests time out, state kept) to make the store unreachable, and so the GIL of the test
process never serialises the requests of the processes under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-2",
    "AWS_REGION": "eu-west-2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A server started by the tests in a process of its own, on a loopback port."""

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
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_AWS_ENV},
        )
    server = MotoServer(process, port, log_path)

    def answers() -> None:
        urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=1).read()

    _await_server("moto server", server, answers, timeout_seconds)
    return server


DYNALITE_DIR = Path(__file__).parent / "dynalite"
DYNALITE_CLI = DYNALITE_DIR / "node_modules" / "dynalite" / "cli.js"


class DynaliteServer(ServerProcess):
    """dynalite (npm), an in-memory DynamoDB with per-item locking: unlike moto, concurrent
    conditional writes to one item are serialised, so races can be tested on it."""


def dynalite_missing() -> str | None:
    """Why dynalite cannot be started here, or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed (on Debian: apt-get install nodejs npm)"
    if not DYNALITE_CLI.exists():
        return f"dynalite is not installed: run npm ci --prefix {DYNALITE_DIR} (make test does)"
    return None


def start_dynalite(log_dir: Path, *, timeout_seconds: float = 30.0) -> DynaliteServer:
    """Start dynalite (in memory, tables ACTIVE at once) on a free loopback port."""
    port = free_port()
    log_path = log_dir / f"dynalite-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", str(DYNALITE_CLI), "--host", "127.0.0.1", "--port", str(port),
             "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = DynaliteServer(process, port, log_path)

    def answers() -> None:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    _await_server("dynalite", server, answers, timeout_seconds)
    return server


def _await_server(
    what: str, server: ServerProcess, answers: Callable[[], None],
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
