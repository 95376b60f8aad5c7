"""Everything ``make demo`` starts, and the promise that all of it stops: a temporary directory,
a moto server standing in for AWS, the celery processes of the demo app, and the ``handover``
commands, run as subprocesses the way an operator runs them.

The stage is stopped by leaving its ``with`` block (whatever the reason: a failed claim, Ctrl-C,
SIGTERM, SIGHUP), and again at interpreter exit if that did not happen. Stopping kills each
celery process's group, stops the moto server and removes the directory; it is idempotent.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import LeaseRecord
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.handover.testing.local_aws import MotoServer, start_moto_server
from beat_handover.handover.testing.lock_watch import (
    leading_environment,
    lease_seen,
    live_participants,
)
from beat_handover.handover.testing.processes import Proc, Processes
from beat_handover.handover.testing.received_runs import Record, read_records
from beat_handover.scheduler.held_signals import HeldSignals

APP = "beat_handover.handover.demo.app"
# What the demo app reads (handover/demo/app.py): where its files go, when letters fire.
DIRECTORY_VARIABLE = "BEAT_HANDOVER_DEMO_DIR"
LETTERS_VARIABLE = "BEAT_HANDOVER_DEMO_LETTERS"
RECORD_FILE = "received.jsonl"
TIMEZONE = "Europe/London"
TABLE = "beat-handover-demo"
REGION = "eu-west-2"
LOCK_URL = f"dynamodb://{TABLE}?region={REGION}"
LOCK_NAME = "beat"
# Short but sane: lease > safe > renew, poll well under the lease, fallback two leases.
TIMINGS = {
    "BEAT_LOCK_LEASE_SECONDS": "3",
    "BEAT_LOCK_RENEW_SECONDS": "0.5",
    "BEAT_LOCK_SAFE_SECONDS": "2",
    "BEAT_LOCK_POLL_SECONDS": "0.25",
    "BEAT_LOCK_FALLBACK_SECONDS": "6",
}
COMMAND_TIMEOUT_SECONDS = 120.0


class Interrupted(Exception):
    """The demo received SIGTERM or SIGHUP (Ctrl-C arrives as KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


# While a command is being started, a signal waits until the command is tracked, so that the
# clean-up stops it (a signal raised inside ``Popen`` would leave the child running, untracked).
_HELD = HeldSignals(
    (signal.SIGINT, signal.SIGTERM, signal.SIGHUP), until="the command being started is tracked"
)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGINT (as KeyboardInterrupt), SIGTERM and SIGHUP into exceptions, so ``finally``
    blocks run; held while a command is being started."""
    previous = {
        signum: signal.signal(signum, _raise)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    _HELD.install()
    try:
        yield
    finally:
        _HELD.uninstall()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class CommandResult:
    """One ``handover`` command as the operator saw it."""

    shown: str  # the command line, as typed
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Stage:
    """The demo's directory, servers and processes."""

    def __init__(self, letters_at: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="beat-handover-demo-"))
        self.letters_at = letters_at
        self.moto: MotoServer | None = None
        self.processes: Processes | None = None
        self.stopped: list[str] = []
        self._store: LeaseStore | None = None
        self._commands: list[subprocess.Popen] = []  # handover commands still running
        self._closed = False
        atexit.register(self.close)

    # -- starting -------------------------------------------------------------------------------

    def start_aws(self) -> MotoServer:
        self.moto = start_moto_server(self.directory)
        # Only this process and its children: boto3 here and in every child talks to moto, with
        # fake credentials, and reads none of the user's AWS profiles (a profile named in
        # AWS_PROFILE that does not exist here would stop every client).
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_DEFAULT_PROFILE", None)
        os.environ.update(self.moto.env())
        os.environ["AWS_CONFIG_FILE"] = str(self.directory / "no-aws-config")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(self.directory / "no-aws-credentials")
        self.processes = Processes(self.directory, APP, self.env(), cwd=self.directory)
        return self.moto

    def env(self) -> dict[str, str]:
        """What every process of the demo is started with (besides the AWS variables)."""
        return {
            "BEAT_LOCK_URL": LOCK_URL,
            "BEAT_LOCK_NAME": LOCK_NAME,
            DIRECTORY_VARIABLE: str(self.directory),
            LETTERS_VARIABLE: self.letters_at,
            **TIMINGS,
        }

    def beat(self, environment: str) -> Proc:
        with _HELD.held():
            return self._processes().beat(environment, name=f"beat-{environment}")

    def worker(self) -> Proc:
        with _HELD.held():
            return self._processes().worker(name="worker")

    def _processes(self) -> Processes:
        if self.processes is None:
            raise RuntimeError("start_aws() first: the processes need the moto server")
        return self.processes

    # -- looking ---------------------------------------------------------------------------------

    @property
    def broker_directory(self) -> Path:
        return self.directory / "broker"

    @property
    def record_path(self) -> Path:
        return self.directory / RECORD_FILE

    def records(self) -> list[Record]:
        return read_records(self.record_path)

    def store(self) -> LeaseStore:
        if self._store is None:
            self._store = open_store(parse_lock_url(LOCK_URL))
        return self._store

    def lease(self) -> LeaseRecord | None:
        return lease_seen(self.store(), LOCK_NAME)

    def leader(self) -> str | None:
        """The environment holding the lease and renewing it, else None."""
        return leading_environment(self.store(), LOCK_NAME)

    def live(self, environment: str) -> int:
        """Live participants (unexpired heartbeats) of ``environment``."""
        return live_participants(self.store(), LOCK_NAME, environment)

    # -- acting ----------------------------------------------------------------------------------

    def handover(self, *args: str) -> CommandResult:
        """Run ``handover -A beat_handover.handover.demo.app ARGS`` (the console script) in the
        directory."""
        argv = ["-A", APP, *args]
        script = Path(sys.executable).with_name("handover")
        command = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from beat_handover.handover.cli import main; main()"]
        )
        started = time.monotonic()
        with _HELD.held():
            process = subprocess.Popen(
                [*command, *argv],
                cwd=self.directory,
                env={**os.environ, **self.env()},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            self._commands.append(process)
        try:
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _stop_command(process)
            raise
        self._commands.remove(process)
        shown = " ".join(["handover", *(_quoted(arg) for arg in argv)])
        return CommandResult(shown, process.returncode, stdout, stderr, time.monotonic() - started)

    # -- stopping --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process, the moto server, and remove the directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        # A second Ctrl-C must not cut the clean-up short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self._store is not None:
                self._store.close()
            for command in self._commands:
                _stop_command(command)
            if self.processes is not None:
                for proc in reversed(self.processes.procs):
                    proc.kill()
                    self.stopped.append(f"{proc.name} (pid {proc.pid})")
            if self.moto is not None:
                self.moto.stop()
                self.stopped.append(f"moto server (pid {self.moto.process.pid})")
            shutil.rmtree(self.directory, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop_command(process: subprocess.Popen) -> None:
    """Kill a handover command (and anything it started) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _quoted(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
