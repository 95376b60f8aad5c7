"""Real servers for tests and benchmarks: a moto server (DynamoDB + SQS) in its own process.

The moto server runs as a separate process, not a thread of the test run, so a test can pause it
(SIGSTOP: requests time out, state kept) to make the store unreachable, and so the GIL of the test
process never serialises the requests of the processes under test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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
class MotoServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and child processes) at this server."""
        return {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": self.url}

    def pause(self) -> None:
        """Make the store unreachable without losing its state: requests hang until resume()."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def reset(self) -> None:
        """Forget every table and queue (moto's reset API)."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        ).read()

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto_server(log_dir: Path, *, timeout_seconds: float = 30.0) -> MotoServer:
    """Start ``python -m moto.server`` on a free loopback port; fail loudly if it is silent."""
    port = free_port()
    log_path = log_dir / f"moto-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **FAKE_AWS_ENV},
    )
    server = MotoServer(process, port, log_path)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto server exited with status {process.returncode} before answering; "
                f"its log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}"
            )
        try:
            urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"moto server on port {port} did not answer within {timeout_seconds:.0f}s; "
        f"its log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}"
    )
