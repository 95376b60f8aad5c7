"""Installing beat-handover takes one import name, ``beat_handover``, and nothing an app owns.

An app with its own ``scheduler.py`` and ``routers`` package (common names) must keep them:
``celery worker`` and ``celery beat -S leased`` run it in real processes, and every ``celery``
command imports nothing of ours but the thin entry module of ``celery handover``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beat_handover.handover.testing.processes import Processes, wait_for

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("beat_lock", "scheduler", "handover", "routers")
CELERY = [sys.executable, "-m", "celery"]

APP = """
import json, os
from datetime import timedelta
from celery import Celery
from scheduler import next_slot
from routers import ROUTES

app = Celery("own_modules", broker=os.environ["TEST_BROKER_URL"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    beat_schedule={"tick": {"task": "app.record", "schedule": timedelta(seconds=1)}},
)


@app.task(bind=True)
def record(self):
    line = {"slot": self.request.headers.get("beat_slot"), "next": next_slot(), "routes": ROUTES}
    with open(os.environ["TEST_RECORD_PATH"], "a") as out:
        out.write(json.dumps(line) + "\\n")
"""


@pytest.fixture
def own_app(tmp_path: Path) -> Path:
    """An app directory whose modules are named like ours used to be."""
    app_dir = tmp_path / "app"
    (app_dir / "routers").mkdir(parents=True)
    (app_dir / "app.py").write_text(APP)
    (app_dir / "scheduler.py").write_text("def next_slot():\n    return 'the app scheduler'\n")
    (app_dir / "routers" / "__init__.py").write_text("ROUTES = ['the app routers']\n")
    return app_dir


def test_product_code_imports_our_packages_only_through_the_root():
    for folder in FOLDERS:
        for source in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] not in FOLDERS, f"{source} imports {name}"


@pytest.mark.slow
def test_the_wheel_installs_one_import_root_and_every_module(tmp_path: Path):
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache",
    ))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"beat_handover"}
    sources = {
        f"beat_handover/{path.relative_to(ROOT)}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
    }
    assert sources <= names, f"modules missing from the wheel: {sorted(sources - names)}"


def test_celery_start_up_imports_only_the_thin_entry_module(own_app: Path):
    code = (
        "import sys\n"
        "from celery.bin.celery import celery\n"
        "assert 'handover' in celery.commands, sorted(celery.commands)\n"
        "print(sorted(m for m in sys.modules if m.startswith('beat_handover')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=own_app, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "['beat_handover',",
        "'beat_handover.handover',",
        "'beat_handover.handover.celery_command']",
    ]


def test_celery_handover_loads_the_real_group_when_run(own_app: Path):
    result = subprocess.run(
        [*CELERY, "-A", "app", "handover", "--help"],
        cwd=own_app, capture_output=True, text=True, timeout=60,
        env={**os.environ, "TEST_BROKER_URL": "memory://"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "handover --to ecs" in result.stdout
    assert "Exit codes:" in result.stdout


@pytest.mark.integration
def test_an_app_with_its_own_scheduler_and_routers_runs_worker_and_leased_beat(
    own_app: Path, tmp_path: Path, redis_url: str, unique_name: str
):
    env = {
        "TEST_BROKER_URL": redis_url.rsplit("/", 1)[0] + "/1",
        "TEST_RECORD_PATH": str(tmp_path / "records.jsonl"),
        "BEAT_LOCK_URL": redis_url,
        "BEAT_LOCK_NAME": unique_name,
    }
    with Processes(tmp_path, "app", env, cwd=own_app) as procs:
        worker = procs.worker()
        beat = procs.beat("paas")
        wait_for(lambda: len(read_lines(tmp_path / "records.jsonl")) >= 2, 60,
                 "two runs of the app's own task", beat, worker)  # fmt: skip
    lines = read_lines(tmp_path / "records.jsonl")
    assert all(line["next"] == "the app scheduler" for line in lines), lines
    assert all(line["routes"] == ["the app routers"] for line in lines), lines
    assert all(line["slot"] for line in lines), "runs without the leased scheduler's headers"


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
