"""The subcommands on real stores: status (once, JSON, watch), history, init, the critical-entry
outlook read from a real Celery app, and connection options given twice (the later wins)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from celery import Celery
from celery.schedules import crontab

from beat_handover.handover.cli.lock_commands import watch_overview
from beat_handover.handover.connection import Connection
from beat_handover.handover.lock_status import take_overview
from beat_handover.handover.procedure.outlook import outlook_for
from tests.handover.running import run

pytestmark = pytest.mark.integration


def test_status_shows_holder_token_pin_participants_and_recent_handovers(lock, paas_leads):
    lock.join("ecs")
    lock.wait_for(lambda _r: len(lock.store.participants(lock.name)) == 2)
    assert (
        run(
            "--lock-url", lock.url, "--lock-name", lock.name, "--to", "ecs", "--timeout", "10s"
        ).exit_code
        == 0
    )

    result = run("status", "--lock-url", lock.url, "--lock-name", lock.name)

    assert result.exit_code == 0, result.output
    record = lock.read()
    lines = result.output.splitlines()
    assert lines[0] == f"Lock {lock.name!r} on redis at {lock.url}"
    assert lines[1].startswith("  read at:      ")
    assert f"  holder:       ecs (instance {record.holder.instance_id})" in lines
    assert f"  token:        {record.token}" in lines
    assert "  pin:          ecs" in lines
    assert any(
        line.startswith("  lease:        renewed ") and " ago, held for " in line for line in lines
    )
    assert any(line.startswith("    ecs: 1 live: leader (seen ") for line in lines)
    assert any(line.startswith("    paas: 1 live: standby (seen ") for line in lines)
    assert "  attention:    none" in lines
    assert all(len(line) <= 80 for line in lines)
    assert any(" handover  done " in line and "from=paas" in line for line in lines)

    document = json.loads(
        run("status", "--json", "--lock-url", lock.url, "--lock-name", lock.name).output
    )
    assert document["lease"]["holder"]["environment"] == "ecs"
    assert document["lease"]["pin"] == "ecs"
    assert sorted(document["participants"]) == ["ecs", "paas"]
    assert [e["kind"] for e in document["recent_events"]] == ["handover", "pin"]


def test_status_and_preflight_show_a_pending_announcement(lock, paas_leads):
    lock.store.announce(lock.name, "ecs", expected_token=lock.read().token)
    options = ["--lock-url", lock.url, "--lock-name", lock.name]
    pending = (
        "handover to ecs announced AGE ago, not pinned yet (a handover under way, or one "
        "interrupted: the next pin clears it)"
    )

    def aged(output: str) -> str:
        return re.sub(r"announced [0-9.]+s ago", "announced AGE ago", output)

    status = aged(run("status", *options).output)
    document = json.loads(run("status", "--json", *options).output)
    preflight = run(*options, "--to", "ecs", "--dry-run")

    assert "\n  pin:          none (any environment may lead)\n  pending:      handover" in status
    assert pending in " ".join(status.split())
    assert document["lease"]["handover_to"] == "ecs"
    assert document["lease"]["handover_announced_at"].startswith(str(datetime.now(UTC).year))
    assert preflight.exit_code == 3  # no live ecs participant
    assert f", pin none (any environment); {pending}\n" in aged(preflight.output)


def test_status_watch_refreshes_until_interrupted(lock, paas_leads, capsys):
    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    connection = Connection(lock_url=lock.url, lock_name=lock.name)
    watch_overview(
        lambda: take_overview(connection), as_json=True, interval_seconds=0.5, sleep=sleep
    )

    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert naps == [0.5, 0.5, 0.5]
    assert [json.loads(line)["lease"]["holder"]["environment"] for line in lines] == ["paas"] * 3


def test_history_lists_who_did_what_from_where(lock, paas_leads):
    lock.join("ecs")
    lock.wait_for(lambda _r: len(lock.store.participants(lock.name)) == 2)
    options = ["--lock-url", lock.url, "--lock-name", lock.name]
    assert run(*options, "--to", "ecs", "--timeout", "10s").exit_code == 0

    text = run("history", *options)
    document = json.loads(run("history", "--json", *options).output)

    assert text.exit_code == 0
    assert [(e["kind"], e["result"]) for e in document] == [
        ("handover", "done"),
        ("pin", "written"),
    ]
    for event in document:
        assert event["actor"] and event["host"] and event["at"]
        assert f"{event['actor']}@{event['host']}" in text.output


def test_history_of_a_lock_without_events(lock):
    result = run("history", "--lock-url", lock.url, "--lock-name", lock.name)
    assert (result.exit_code, result.output) == (
        0,
        "No handovers or pins recorded for this lock yet.\n",
    )


def test_later_connection_options_win(lock, paas_leads):
    result = run(
        "--lock-url",
        lock.url,
        "--lock-name",
        "some-other-lock",
        "status",
        "--json",
        "--lock-name",
        lock.name,
    )
    assert json.loads(result.output)["lock"] == lock.name


def test_a_store_nobody_listens_on_exits_3_and_says_the_connection_was_refused(unique_name):
    result = run("status", "--lock-url", "redis://127.0.0.1:1/0", "--lock-name", unique_name)
    assert result.exit_code == 3
    assert result.output.startswith(
        "Error: Redis at redis://127.0.0.1:1/0 could not be reached: the connection was refused"
    )


def test_init_creates_the_table_once_and_prints_the_policies(moto_server, unique_name):
    url = f"dynamodb://{unique_name}?region=eu-west-2"

    first = run("init", "--lock-url", url)
    again = run("init", "--lock-url", url)

    assert first.exit_code == 0 and again.exit_code == 0, first.output
    assert f"table {unique_name} in eu-west-2: created" in first.stderr
    assert f"table {unique_name} in eu-west-2: already exists" in again.stderr
    policies = json.loads(first.stdout)
    assert sorted(policies) == ["beat", "operator", "router", "worker"]
    assert policies["beat"]["Statement"][0]["Resource"] == (
        f"arn:aws:dynamodb:eu-west-2:123456789012:table/{unique_name}"
    )
    table = boto3.client("dynamodb", region_name="eu-west-2").describe_table(TableName=unique_name)[
        "Table"
    ]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]


def test_init_on_redis_has_nothing_to_create(redis_url):
    result = run("init", "--lock-url", redis_url)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "needs no table and no IAM policy: nothing to create." in result.stderr


def app_with(schedule: dict, critical: list[str]) -> Celery:
    app = Celery("handover-tests", set_as_current=False)
    app.conf.update(timezone="UTC", beat_schedule=schedule, beat_lock_critical=critical)
    return app


def test_outlook_reads_the_apps_schedule_and_offers_the_next_quiet_window(lock):
    at = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    app = app_with(
        {
            "letters": {"task": "t", "schedule": crontab(minute=at.minute)},
            "tick": {"task": "t", "schedule": 5.0},
        },
        ["letters"],
    )
    connection = Connection(app=app, lock_url=lock.url, lock_name=lock.name)

    outlook = outlook_for(connection, guard_seconds=600, window_seconds=60)(None)

    assert outlook.entries == ("letters",)
    assert (outlook.next_entry, outlook.next_at) == ("letters", at)
    assert outlook.quiet_from == at + timedelta(minutes=10)
    assert outlook.unknown is None


def test_outlook_of_an_interval_entry_that_never_ran_is_unknown(lock):
    app = app_with({"letters": {"task": "t", "schedule": timedelta(hours=1)}}, ["letters"])
    connection = Connection(app=app, lock_url=lock.url, lock_name=lock.name)

    outlook = outlook_for(connection, guard_seconds=600, window_seconds=60)(None)

    assert outlook.next_at is None
    assert outlook.unknown.startswith("critical entry 'letters': ")


def test_outlook_without_an_app_cannot_tell(lock, monkeypatch):
    monkeypatch.setenv("BEAT_LOCK_CRITICAL", "letters")
    connection = Connection(lock_url=lock.url, lock_name=lock.name)

    outlook = outlook_for(connection, guard_seconds=600, window_seconds=60)(None)

    assert outlook.unknown == (
        "beat_lock_critical names letters but no Celery app was given, so their schedule is "
        "unknown; give -A APP"
    )


def test_a_missing_table_says_run_init_and_exits_2(moto_server, unique_name):
    url = f"dynamodb://{unique_name}?region=eu-west-2"

    handover = run("--lock-url", url, "--to", "ecs")
    status = run("status", "--lock-url", url)

    assert handover.exit_code == 2 and status.exit_code == 2
    assert "The lock table does not exist: run `handover init` first." in handover.output
    assert status.output.startswith("Error: ")
    assert unique_name in status.output
