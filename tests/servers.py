"""Real servers for tests and benchmarks: a moto server (DynamoDB + SQS) and dynalite, each in its
own process.

The moto server lives in the package (``beat_handover.handover.testing.local_aws``, the demo
starts it too); it is re-exported here with the port helper so tests and benchmarks import their
servers from one place. dynalite is a test-only server.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from beat_handover.handover.testing.local_aws import (
    FAKE_AWS_ENV,
    MotoServer,
    ServerProcess,
    await_server,
    start_moto_server,
)
from beat_handover.handover.testing.processes import free_port, spawn

__all__ = [
    "FAKE_AWS_ENV",
    "DynaliteServer",
    "MotoServer",
    "ServerProcess",
    "dynalite_missing",
    "free_port",
    "start_dynalite",
    "start_moto_server",
]

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
    proc = spawn(
        "dynalite",
        [
            "node",
            str(DYNALITE_CLI),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ],
        log_path,
        env=os.environ,
    )
    server = DynaliteServer(proc.popen, port, log_path)

    def answers() -> None:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    await_server("dynalite", server, answers, timeout_seconds)
    return server
