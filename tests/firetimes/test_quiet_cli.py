"""``handover quiet-windows`` through click's CliRunner (output and error text) and as a real
``handover`` process (exit codes and the JSON shape), on the app in ``quietapp.py``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from click.testing import CliRunner

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.app_schedule import app_timezone
from beat_handover.handover.cli import cli
from beat_handover.scheduler.quiet import select_critical

HERE = Path(__file__).parent
APP = "tests.firetimes.quietapp"
HANDOVER = Path(sys.executable).parent / "handover"
# The app's settings may be overridden by the environment (BEAT_LOCK_URL...): keep them out.
CLEAN_ENV = {key: None for key in os.environ if key.startswith("BEAT_LOCK_")}
NEEDS_REDIS_STORE = pytest.mark.skipif(
    importlib.util.find_spec("beat_handover.beat_lock.redis_store") is None,
    reason="the redis lease store (beat_lock/redis_store.py) is not on this branch yet",
)

WEDNESDAY_TABLE = """\
Quiet windows in Europe/London from Wed 17 Jun 2026 00:00 BST to Thu 18 Jun 2026 00:00 BST
Critical: billing-nightly, letters-weekday; guard 10m either side of each critical run; windows of
  at least 15m.

  START (local)         END (local)           UTC                          LENGTH  RUNS INSIDE
  Wed 17 Jun 00:00 BST  Wed 17 Jun 01:50 BST  16 Jun 23:00 - 17 Jun 00:50  1h50m   610
      runs inside: health-db 111, health-queue 111, health-redis 111, inbox-poll 111,
        metrics-push 111, refresh-search 8, 10 more entries 47
      critical billing-nightly: Wed 17 Jun 02:00 BST (17 Jun 01:00 UTC)
  Wed 17 Jun 02:10 BST  Wed 17 Jun 17:20 BST  17 Jun 01:10 - 17 Jun 16:20  15h10m  5012
      runs inside: health-db 911, health-queue 911, health-redis 911, inbox-poll 911,
        metrics-push 911, expire-sessions 61, 14 more entries 396
      critical letters-weekday: Wed 17 Jun 17:30 BST (17 Jun 16:30 UTC)
  Wed 17 Jun 17:40 BST  Thu 18 Jun 00:00 BST  17 Jun 16:40 - 17 Jun 23:00  6h20m   2087
      runs inside: health-db 381, health-queue 381, health-redis 381, inbox-poll 381,
        metrics-push 381, expire-sessions 26, 10 more entries 156

Not counted, phase unknown (beat_lock_url is not set, so no claimed slots could be read): heartbeat,
  queue-depth, cache-stats, token-refresh, reconcile-ledger
"""


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(
        cli, ["-A", APP, "quiet-windows", *args], env={**CLEAN_ENV, **(env or {})}
    )


def test_table_for_people() -> None:
    result = invoke("--date", "2026-06-17")
    assert result.exit_code == 0, result.output
    assert result.output == WEDNESDAY_TABLE


def test_json_for_tools() -> None:
    result = invoke(
        "--from",
        "2026-06-17T16:00",
        "--to",
        "2026-06-17T18:00+01:00",
        "--json",
        "--critical",
        "letters-*",
        "--guard",
        "1h30m",
        "--min-length",
        "90s",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "timezone": "Europe/London",
        "from": "2026-06-17T16:00:00+01:00",
        "to": "2026-06-17T18:00:00+01:00",
        "guard_minutes": 90,
        "min_length_minutes": 1.5,
        "critical": ["letters-weekday"],
        "windows": [],
        "critical_runs": [{"entry": "letters-weekday", "at": "2026-06-17T17:30:00+01:00"}],
        "phase_unknown": [
            "heartbeat",
            "queue-depth",
            "cache-stats",
            "token-refresh",
            "reconcile-ledger",
        ],
        "unsupported": [],
        "phase_unknown_reason": "beat_lock_url is not set, so no claimed slots could be read",
        "no_window_because": (
            "letters-weekday runs once, its guard covering the whole period, and a window of "
            "1m30s needs 3h1m30s between two critical runs (the 1h30m guard on both sides)"
        ),
    }


def test_days_from_a_start_and_globs() -> None:
    result = invoke("--from", "2026-06-19T00:00", "--days", "2", "--critical", "bill*", "--json")
    document = json.loads(result.output)
    assert [run["at"] for run in document["critical_runs"]] == [
        "2026-06-19T02:00:00+01:00",
        "2026-06-20T02:00:00+01:00",
    ]
    assert [(w["start"], w["end"]) for w in document["windows"]] == [
        ("2026-06-19T00:00:00+01:00", "2026-06-19T01:50:00+01:00"),
        ("2026-06-19T02:10:00+01:00", "2026-06-20T01:50:00+01:00"),
        ("2026-06-20T02:10:00+01:00", "2026-06-21T00:00:00+01:00"),
    ]


def test_default_period_is_the_next_day_from_now() -> None:
    before = datetime.now(UTC)
    document = json.loads(invoke("--json").output)
    start = datetime.fromisoformat(document["from"])
    assert before <= start <= datetime.now(UTC)
    assert datetime.fromisoformat(document["to"]) - start == timedelta(days=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--critical", "billing"],
            "beat_lock_critical: 'billing' matches no entry of the schedule; did you mean "
            "'billing-nightly'? known entries: backup-nightly, billing-nightly, cache-stats, ",
        ),
        (
            ["--from", "2026-06-17T10:00", "--to", "2026-06-17T09:00"],
            "the period ends (2026-06-17T09:00:00+01:00) before or when it starts "
            "(2026-06-17T10:00:00+01:00); give a --to later than --from",
        ),
        (
            ["--date", "2026-06-17", "--days", "2"],
            "--date names a whole day; do not combine it with --from, --to or --days",
        ),
        (["--date", "17/06/2026"], "--date '17/06/2026' is not a date such as 2026-03-29"),
        (["--to", "2026-06-17T09:00"], "--to needs --from (or use --date or --days)"),
        (
            ["--from", "2026-06-17", "--to", "2026-06-18", "--days", "1"],
            "give either --to or --days with --from, not both",
        ),
        (
            ["--from", "yesterday"],
            "--from 'yesterday' is not an ISO 8601 time such as "
            "2026-03-29T01:00, 2026-03-29T01:00+01:00 or 2026-03-29T00:00Z",
        ),
        (
            ["--from", "2026-01-01", "--to", "2027-06-01"],
            "the period is 515 days, 23:00:00 long; ask about at most 366 days at once",
        ),
    ],
)
def test_user_mistakes_are_config_errors_that_say_what_was_wrong(args, message) -> None:
    result = invoke(*args)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--guard", "10"],
            "Error: Invalid value for '--guard': '10' needs a unit: write 10m or 10s, for example",
        ),
        (
            ["--min-length", "quarter"],
            "Error: Invalid value for '--min-length': 'quarter' is not a duration",
        ),
        (
            ["--guard", "2d"],
            "Error: Invalid value for '--guard': must be 0 (none) or from 1s to 1d",
        ),
    ],
)
def test_bad_durations_are_usage_errors_that_say_what_was_wrong(args, message) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_no_critical_entries_is_an_error_not_an_all_quiet_day() -> None:
    result = invoke("--date", "2026-06-17", env={"BEAT_LOCK_CRITICAL": ""})
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith(
        "no critical entries: name them with --critical NAME_OR_GLOB or set beat_lock_critical; "
        "known entries: backup-nightly, billing-nightly,"
    )


def test_a_long_schedule_is_not_dumped_into_the_error() -> None:
    names = [f"entry-{n}" for n in range(100)]
    with pytest.raises(ConfigError) as caught:
        select_critical(names, ["entry-1000"])
    assert str(caught.value) == (
        "beat_lock_critical: 'entry-1000' matches no entry of the schedule; did you mean "
        "'entry-10' or 'entry-1' or 'entry-0'? known entries (100, the first 40 shown): "
        + ", ".join(sorted(names)[:40])
        + ", ..."
    )


@NEEDS_REDIS_STORE
def test_interval_anchors_come_from_the_claims_in_the_store(redis_url, unique_name):
    """With a reachable lease store, an interval entry is placed on its last claimed slot."""
    from beat_handover.beat_lock.identity import Identity
    from beat_handover.beat_lock.location import parse_lock_url
    from beat_handover.beat_lock.stores import open_store

    store = open_store(parse_lock_url(redis_url))
    identity = Identity.new("paas")
    assert store.acquire(unique_name, identity, expected_version=None, new_version="v1")
    token = store.read(unique_name).token
    fence = {"identity": identity, "token": token, "everything": True}
    assert store.fence(unique_name, ["reconcile-ledger"], **fence) == {}
    slot = datetime(2026, 6, 17, 6, 0, tzinfo=UTC)
    assert store.claim(
        unique_name, "reconcile-ledger", slot, identity=identity, token=token, claim_id="c1"
    ).claimed
    store.close()
    result = invoke(
        "--lock-url",
        redis_url,
        "--lock-name",
        unique_name,
        "--date",
        "2026-06-17",
        "--critical",
        "reconcile-ledger",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [run["at"] for run in document["critical_runs"]] == [
        "2026-06-17T01:00:00+01:00",
        "2026-06-17T07:00:00+01:00",
        "2026-06-17T13:00:00+01:00",
        "2026-06-17T19:00:00+01:00",
    ]
    assert "reconcile-ledger" not in document["phase_unknown"]
    assert document["phase_unknown_reason"] == "the lease store has no claimed slot for them yet"


@NEEDS_REDIS_STORE
def test_an_unreachable_lease_store_leaves_the_phase_unknown_and_says_why() -> None:
    result = invoke("--lock-url", "redis://127.0.0.1:1/0", "--date", "2026-06-17", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert "heartbeat" in document["phase_unknown"]
    assert document["phase_unknown_reason"].startswith("the lease store could not be read: ")


# -- the real command, as a process ---------------------------------------------------------------

PROCESS_CASES = {
    "json": (["-A", "quietapp", "quiet-windows", "--date", "2026-06-17", "--json"], 0, ""),
    "app does not import": (
        ["-A", "no_such_app", "quiet-windows"],
        2,
        "Error: cannot load the Celery app 'no_such_app'",
    ),
    "unknown critical": (
        ["-A", "quietapp", "quiet-windows", "--critical", "billing"],
        2,
        "Error: beat_lock_critical: 'billing' matches no entry of the schedule; "
        "did you mean 'billing-nightly'? known entries: backup-nightly,",
    ),
    "period backwards": (
        [
            "quiet-windows",
            "-A",
            "quietapp",
            "--from",
            "2026-06-17T10:00",
            "--to",
            "2026-06-17T09:00",
        ],
        2,
        "Error: the period ends",
    ),
    "bad duration": (
        ["-A", "quietapp", "quiet-windows", "--guard", "ten"],
        2,
        "Usage: handover quiet-windows [OPTIONS]\nTry 'handover quiet-windows --help' for help."
        "\n\nError: Invalid value for '--guard': 'ten' is not a duration",
    ),
    "critical interval, phase unknown": (
        ["-A", "quietapp", "quiet-windows", "--critical", "reconcile-ledger"],
        3,
        "Error: critical entry 'reconcile-ledger': interval schedule (every 6:00:00) has no "
        "anchor: its phase is unknown until the lease store has a claimed slot",
    ),
}


@pytest.fixture(scope="module")
def processes() -> dict[str, subprocess.CompletedProcess]:
    """Every case run at once (each process spends a second importing Celery)."""
    assert HANDOVER.exists(), f"{HANDOVER} is missing: run `make test` to install the package"
    env = {key: value for key, value in os.environ.items() if key not in CLEAN_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    running = {
        name: subprocess.Popen(
            [str(HANDOVER), *args],
            cwd=HERE,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, (args, _, _) in PROCESS_CASES.items()
    }
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return results


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(PROCESS_CASES))
def test_handover_process_exit_codes(processes, case: str) -> None:
    _, exit_code, stderr_start = PROCESS_CASES[case]
    result = processes[case]
    assert result.returncode == exit_code, result.stderr
    assert result.stderr.startswith(stderr_start)
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_handover_process_json_shape(processes) -> None:
    document = json.loads(processes["json"].stdout)
    assert set(document) == {
        "timezone",
        "from",
        "to",
        "guard_minutes",
        "min_length_minutes",
        "critical",
        "windows",
        "critical_runs",
        "phase_unknown",
        "unsupported",
        "phase_unknown_reason",
        "no_window_because",
    }
    assert document["timezone"] == "Europe/London"
    assert document["no_window_because"] is None
    assert [set(window) for window in document["windows"]] == [
        {"start", "end", "minutes", "noncritical_runs", "runs_by_entry"}
    ] * 3
    for window in document["windows"]:
        assert sum(window["runs_by_entry"].values()) == window["noncritical_runs"]
    assert document["windows"][0]["runs_by_entry"]["refresh-search"] == 8
    assert [
        (w["start"], w["end"], w["minutes"], w["noncritical_runs"]) for w in document["windows"]
    ] == [
        ("2026-06-17T00:00:00+01:00", "2026-06-17T01:50:00+01:00", 110, 610),
        ("2026-06-17T02:10:00+01:00", "2026-06-17T17:20:00+01:00", 910, 5012),
        ("2026-06-17T17:40:00+01:00", "2026-06-18T00:00:00+01:00", 380, 2087),
    ]
    for stamp in [document["from"], document["to"]] + [r["at"] for r in document["critical_runs"]]:
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(hours=1)


def test_the_app_time_zone_is_the_one_beat_uses() -> None:
    def app_with(**conf: object) -> Celery:
        # A new app each time: Celery keeps app.timezone once it has read it.
        app = Celery("zones", set_as_current=False)
        app.conf.update(conf)
        return app

    assert app_timezone(app_with()) == ZoneInfo("UTC")
    assert app_timezone(app_with(timezone="Europe/London")) == ZoneInfo("Europe/London")
    with pytest.raises(
        ConfigError,
        match=r"^app.conf.timezone 'Europe/Londres' is not a time zone Celery can load .*; "
        r"use an IANA name such as Europe/London or UTC$",
    ):
        app_timezone(app_with(timezone="Europe/Londres"))
    with pytest.raises(ConfigError, match=r"^app.conf.timezone is not set and enable_utc is off"):
        app_timezone(app_with(timezone=None, enable_utc=False))


def test_without_an_app_the_command_says_how_to_name_one() -> None:
    result = CliRunner().invoke(cli, ["quiet-windows"], env=CLEAN_ENV)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == (
        "no Celery app given: name it with -A, e.g. handover -A proj quiet-windows"
    )
