"""The README's CLI and configuration references are generated from the code by
docs/gen_cli_reference.py; these tests fail when the README has drifted from it."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "gen_cli_reference.py"
generator = runpy.run_path(str(SCRIPT), run_name="gen_cli_reference")


def test_the_readme_references_are_current():
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_stale_reference_is_caught_and_named():
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace(
        "| `beat_lock_name` | `BEAT_LOCK_NAME` | `beat` |",
        "| `beat_lock_name` | `BEAT_LOCK_NAME` | `lock` |",
    )
    assert stale != readme
    assert generator["render"](stale) == readme
    with pytest.raises(SystemExit, match=r"README\.md has no generated section 'cli-reference'"):
        generator["render"]("# a README without markers\n")


def test_each_block_is_what_the_command_prints_for_help():
    """The reference for `handover route set` is the real console script's --help output at
    80 columns, and every command of the CLI has its block."""
    readme = (ROOT / "README.md").read_text()
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("handover")), "route", "set", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert shown.returncode == 0, shown.stderr
    block = "$ handover route set --help\n" + "\n".join(
        line.rstrip() for line in shown.stdout.rstrip("\n").splitlines()
    )
    assert block in readme
    paths = [ctx.command_path for ctx in generator["contexts"](generator["cli"], "handover")]
    assert {"handover", "handover status", "handover route create"} <= set(paths)
    for path in paths:
        assert f"#### `{path}`\n\n```\n$ {path} --help\n" in readme
