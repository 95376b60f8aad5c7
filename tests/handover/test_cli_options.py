"""Fast tests of the command line: option parsing, exit codes and the exact error text.

Nothing here needs a store: every case fails (or prints help) before one would be opened.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreMissing,
    StoreUnavailable,
)
from beat_handover.handover.cli import cli
from beat_handover.handover.exit_codes import exit_code_for
from tests.handover.running import run

SUBCOMMANDS = ["status", "history", "init", "quiet-windows", "route show"]


def test_help_documents_every_exit_code():
    result = run("--help")
    assert result.exit_code == 0
    for line in (
        "0    done, or nothing to do",
        "2    usage or configuration error",
        "3    refused by preflight",
        "4    the target did not take over in time; rolled back",
        "5    the roll-back failed",
    ):
        assert line in result.output
    commands = [command.split()[0] for command in SUBCOMMANDS]
    for command in [*commands, "--to ENV", "--force", "--dry-run", "--guard", "--timeout"]:
        assert command in result.output


def every_command(command: click.Command, name: str, parent: click.Context | None = None):
    ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
    yield ctx
    if isinstance(command, click.Group):
        for child in command.list_commands(ctx):
            yield from every_command(command.get_command(ctx, child), child, ctx)


def test_every_help_fits_80_columns_on_a_wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    contexts = list(every_command(cli, "handover"))
    assert len(contexts) >= 12
    for ctx in contexts:
        lines = ctx.command.get_help(ctx).splitlines()
        too_wide = [line for line in lines if len(line) > 80]
        assert not too_wide, f"{ctx.command_path}: {too_wide}"


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"handover {version('beat-handover')}\n"


def test_no_target_and_no_command_is_a_usage_error():
    result = run()
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: say where beat should go with --to ENV (e.g. handover --to ecs), or give a "
        "command such as status; see handover --help\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--to", "ECS"],
            "Error: Invalid value for '--to': must be a short lower-case label "
            "such as 'paas' or 'ecs' (letters, digits, '-' or '_', at most 32 characters), "
            "got 'ECS'",
        ),
        (
            ["--to", "ecs", "--timeout", "0"],
            "Error: Invalid value for '--timeout': must be from 1s to 1h, got '0'",
        ),
        (
            ["--to", "ecs", "--timeout", "99999h"],
            "Error: Invalid value for '--timeout': must be from 1s to 1h, got '99999h'",
        ),
        (
            ["--to", "ecs", "--timeout", "-5s"],
            "Error: Invalid value for '--timeout': '-5s' is not a duration; write it as a number "
            "with units d, h, m or s in that order, e.g. 90s, 10m, 1h30m or 2h, or a bare number "
            "of seconds",
        ),
        (
            ["--to", "ecs", "--guard", "10"],
            "Error: Invalid value for '--guard': '10' needs a unit: write 10m or 10s, for example",
        ),
        (
            ["--to", "ecs", "--guard", "soon"],
            "Error: Invalid value for '--guard': 'soon' is not a duration; write it as a number "
            "with units d, h, m or s in that order, e.g. 90s, 10m, 1h30m or 2h",
        ),
        (["--to"], "Error: Option '--to' requires an argument."),
        (["--to", "ecs", "--frobnicate"], "Error: No such option '--frobnicate'."),
        (
            ["--to", "ecs", "status"],
            "Error: --to: options of the handover itself (handover --to ENV ...) cannot be "
            "combined with the command 'status'",
        ),
        (
            ["--dry-run", "--json", "history"],
            "Error: --dry-run, --json: options of the handover itself (handover --to ENV ...) "
            "cannot be combined with the command 'history'",
        ),
        (
            ["status", "--interval", "0"],
            "Error: Invalid value for '--interval': must be from 0.1s to 1h, got '0'",
        ),
        (
            ["history", "--limit", "0"],
            "Error: Invalid value for '--limit': 0 is not in the range 1<=x<=1000.",
        ),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_zero_guard_is_allowed_and_means_no_check():
    result = run("--to", "ecs", "--guard", "0", "--lock-url", "nonsense://x")
    assert result.exit_code == 2
    assert "unknown scheme 'nonsense'" in result.output


@pytest.mark.parametrize("command", ["--to ecs", *SUBCOMMANDS])
@pytest.mark.parametrize("position", ["before", "after"])
def test_app_option_works_before_and_after_every_command(command, position, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    words = command.split()
    app = ["-A", "no_such_module_here"]
    args = [*app, *words] if position == "before" else [*words, *app]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Error: cannot load the Celery app 'no_such_module_here' (ModuleNotFoundError" in (
        result.output
    )


@pytest.mark.parametrize("command", ["--to ecs", "status", "history", "init"])
@pytest.mark.parametrize("position", ["before", "after"])
def test_lock_url_works_before_and_after_every_command(command, position, monkeypatch):
    monkeypatch.delenv("BEAT_LOCK_URL", raising=False)
    words = command.split()
    url = ["--lock-url", "nonsense://x"]
    args = [*url, *words] if position == "before" else [*words, *url]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert (
        "Error: --lock-url 'nonsense://x' has unknown scheme 'nonsense'; use "
        "dynamodb://TABLE?region=REGION, redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
    ) in result.output


@pytest.mark.parametrize("command", ["--to ecs", *SUBCOMMANDS])
def test_every_command_refuses_a_misspelt_setting(command, monkeypatch):
    monkeypatch.setenv("BEAT_LOCK_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("BEAT_LOCK_LEASE_SECOND", "10")
    result = run(*command.split())
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "Error: environment variable BEAT_LOCK_LEASE_SECOND is not a beat_lock setting, so it "
        "would be ignored; did you mean BEAT_LOCK_LEASE_SECONDS? the settings are "
    )


def test_a_misspelt_key_in_the_apps_conf_is_refused_by_the_cli(tmp_path, monkeypatch):
    (tmp_path / "typo_app.py").write_text(
        "from celery import Celery\n"
        "app = Celery('typo', set_as_current=False)\n"
        "app.conf.beat_lock_critcal = ['letters']\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "typo_app", raising=False)
    result = run("-A", "typo_app", "quiet-windows")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        "Error: app.conf.beat_lock_critcal is not a beat_lock setting, so it would be ignored; "
        "did you mean beat_lock_critical?"
    )


def test_missing_lock_url_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("BEAT_LOCK_URL", raising=False)
    result = run("status")
    assert result.exit_code == 2
    assert "Error: beat_lock_url is not set: set app.conf.beat_lock_url or the BEAT_LOCK_URL" in (
        result.output
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (StoreMissing("x"), 2),
        (StoreUnavailable("x"), 3),
        (CorruptRecord("x"), 3),
    ],
)
def test_library_errors_map_to_documented_exit_codes(error, code):
    assert exit_code_for(error) == code


def test_init_refuses_a_malformed_account_id(monkeypatch):
    monkeypatch.delenv("BEAT_LOCK_URL", raising=False)
    result = run(
        "init", "--lock-url", "dynamodb://beat-lock?region=eu-west-2", "--account-id", "12ab"
    )
    assert result.exit_code == 2
    assert "Error: --account-id must be 12 digits, got '12ab'" in result.output


def test_under_celery_the_group_itself_ends_library_errors(monkeypatch):
    from celery.bin.celery import celery

    monkeypatch.delenv("BEAT_LOCK_URL", raising=False)
    result = CliRunner().invoke(
        celery, ["-A", "tests.handover.app", "handover", "status", "--lock-url", "nonsense://x"]
    )
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Error: --lock-url 'nonsense://x' has unknown scheme 'nonsense'" in result.output
    assert "Traceback" not in result.output
