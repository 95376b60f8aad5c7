"""The CLI and configuration references under docs/reference/ are generated from the code by
docs/gen_cli_reference.py; these tests fail when a reference has drifted from it."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "gen_cli_reference.py"
CLI_REFERENCE = ROOT / "docs" / "reference" / "cli.md"
CONFIG_REFERENCE = ROOT / "docs" / "reference" / "configuration.md"
generator = runpy.run_path(str(SCRIPT), run_name="gen_cli_reference")


def test_the_references_are_current():
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_stale_reference_is_caught_and_named():
    reference = CONFIG_REFERENCE.read_text()
    stale = reference.replace(
        "| `beat_lock_name` | `BEAT_LOCK_NAME` | `beat` |",
        "| `beat_lock_name` | `BEAT_LOCK_NAME` | `lock` |",
    )
    assert stale != reference
    assert generator["render"](CONFIG_REFERENCE, stale) == reference
    with pytest.raises(
        SystemExit, match=r"docs/reference/cli\.md has no generated section 'cli-reference'"
    ):
        generator["render"](CLI_REFERENCE, "# a reference without markers\n")


def test_a_stale_file_makes_the_check_fail_naming_it(tmp_path):
    """The script run with --check on a copy of the repository's docs whose configuration
    reference is stale exits non-zero, names the file and shows the difference."""
    docs = tmp_path / "docs"
    (docs / "reference").mkdir(parents=True)
    (docs / "gen_cli_reference.py").write_text(SCRIPT.read_text())
    (docs / "reference" / "cli.md").write_text(CLI_REFERENCE.read_text())
    (docs / "reference" / "configuration.md").write_text(
        CONFIG_REFERENCE.read_text().replace("| `beat_lock_poll_seconds` |", "| `poll` |")
    )
    check = subprocess.run(
        [sys.executable, str(docs / "gen_cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    assert "stale: docs/reference/configuration.md" in check.stderr
    assert "+| `beat_lock_poll_seconds` |" in check.stdout


def test_each_block_is_what_the_command_prints_for_help():
    """The reference for `handover route set` is the real console script's --help output at
    80 columns, and every command of the CLI has its block."""
    reference = CLI_REFERENCE.read_text()
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
    assert block in reference
    paths = [ctx.command_path for ctx in generator["contexts"](generator["cli"], "handover")]
    assert {"handover", "handover status", "handover route create"} <= set(paths)
    for path in paths:
        assert f"## `{path}`\n\n```\n$ {path} --help\n" in reference
