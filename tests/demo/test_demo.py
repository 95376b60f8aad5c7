"""``make demo`` end to end: its Python entry point (``python -m beat_handover.handover.demo``) as
a subprocess, as a newcomer runs it. It must exit 0 with every claim held, show what it promises,
write nothing where it runs, and leave no process behind, also when stopped with Ctrl-C or
SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beat_handover.handover.demo.story import letters_time

DEMO_SECONDS = 150  # it takes about 40 s; generous for a loaded two-core machine


def start_demo(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The demo with its temporary directory under ``tmp_path`` (TMPDIR), run from an empty
    directory; every process it starts inherits TMPDIR, which is how leftovers are found."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "beat_handover.handover.demo"],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return demo, cwd


def processes_mentioning(text: str) -> list[str]:
    """Live processes (other than this one) whose environment or command line holds ``text``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            data = (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours
        if text.encode() in data and state != "Z":
            found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()!r}")
    return found


def assert_nothing_left(tmp_path: Path, cwd: Path) -> None:
    if Path("/proc").is_dir():
        assert processes_mentioning(str(tmp_path)) == []
    assert list(tmp_path.glob("beat-handover-demo-*")) == []
    assert list(cwd.iterdir()) == []


@pytest.mark.integration
@pytest.mark.slow
def test_demo_runs_end_to_end_and_every_claim_holds(tmp_path):
    demo, cwd = start_demo(tmp_path)
    try:
        output, _ = demo.communicate(timeout=DEMO_SECONDS)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()

    assert demo.returncode == 0, output
    assert "[FAILED]" not in output
    summary = r"^All (1[5-9]|[2-9]\d) claims held, in (\d+m(\d+s)?|\d+s)\.$"
    assert re.search(summary, output, re.M), output
    for line in [
        "$ handover -A beat_handover.handover.demo.app init > policies.json",
        "[ok]     paas leads, ecs stands by, the worker receives paas's runs",
        "[ok]     handover status: paas holds the lease, one ecs beat is live",
        "critical letters:",
        f"[ok]     the same windows drawn as a timeline, with no network needed: open {tmp_path}",
        "Done: ecs leads (gap ",
        "[ok]     every slot arrived exactly once",
        "[ok]     no heartbeat slot is missing",
        "[ok]     the sender changed once, paas -> ecs, to a higher token",
        "[ok]     paas waited out the fallback time before sending",
        "[ok]     the pin moved to paas with the lease",
        "[ok]     the fallback is in the lock's history",
        "[ok]     every slot still arrived exactly once",
        "[ok]     no heartbeat slot is missing: the missed ones were caught up",
        "at 0 %                        paas 1000, ecs    0",
        "[ok]     every visitor keeps its side on the next request (sticky cookie)",
        "step 1/2: 10% -> 20% to ecs (version 4); baking 3s",
        "ABORTED: alarm 'web-5xx' is ALARM (Threshold Crossed: 5xx rate 9.5 > 5) at step 2/2",
        "[ok]     the first step baked with the alarm quiet, the second was aborted by it: exit 4",
        "[ok]     web is back at 0 %, the rollout over, the alarm named in the route's history",
        "  web (cloudfront): 0% to ecs, the rest to paas, since ",
        "[ok]     handover status shows beat's leader and the web route with its last change, in",
    ]:
        assert line in output, f"missing {line!r} in:\n{output}"
    cleaned = next(line for line in output.splitlines() if line.startswith("Cleaned up:"))
    assert len(re.findall(r"\(pid \d+\)", cleaned)) == 4, cleaned
    assert_nothing_left(tmp_path, cwd)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "status", "says"),
    [
        (signal.SIGINT, 130, "Interrupted (Ctrl-C)"),
        (signal.SIGTERM, 143, "Interrupted (received SIGTERM)"),
    ],
)
def test_an_interrupted_demo_stops_everything_it_started(tmp_path, signum, status, says):
    demo, cwd = start_demo(tmp_path)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout], daemon=True).start()
    seen = []
    try:
        while "paas leads, ecs stands by" not in (seen[-1] if seen else ""):
            seen.append(lines.get(timeout=DEMO_SECONDS))
        demo.send_signal(signum)
        assert demo.wait(timeout=60) == status
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    while not lines.empty():
        seen.append(lines.get())
    output = "".join(seen)
    assert says in output, output
    assert "Cleaned up: stopped beat-ecs (pid " in output, output
    assert_nothing_left(tmp_path, cwd)


def test_letters_stay_out_of_the_handover_guard():
    assert letters_time(datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) == "17:30"
    assert letters_time(datetime(2026, 11, 26, 17, 20, tzinfo=UTC)) == "05:30"
    # 16:45 UTC is 17:45 BST in summer: within the hour of 17:30 local.
    assert letters_time(datetime(2026, 7, 1, 16, 45, tzinfo=UTC)) == "05:30"
    assert letters_time(datetime(2026, 7, 1, 18, 45, tzinfo=UTC)) == "17:30"
