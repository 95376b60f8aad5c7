"""``handover status`` as the migration's overview, on real stores: beat's lock (leader, pin,
participants per environment, last runs, late runs) and every route of the table with its rollout,
in 80 columns; and a lock name never acquired, which names the locks the store holds and exits 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from celery.schedules import crontab

from beat_handover.beat_lock.record import EntryClaim
from beat_handover.handover.app_schedule import AppSchedule
from beat_handover.handover.connection import Connection
from beat_handover.handover.lock_status import LateRun, late_runs
from beat_handover.handover.routes import Routes
from beat_handover.routers.route_format import Rollout, iso_utc
from tests.handover.running import run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("lock", ["redis", "dynamodb"], indirect=True)
def test_a_lock_never_acquired_names_the_locks_the_store_holds(lock, paas_leads):
    result = run("status", "--lock-url", lock.url, "--lock-name", "beat")
    assert result.exit_code == 2
    where = "redis at " + lock.url if lock.url.startswith("redis") else "dynamodb table "
    assert result.stderr.startswith(f"Error: lock 'beat' was never acquired in {where}")
    assert result.stderr.endswith(
        f"; it holds 1 lock: {lock.name}; name one with --lock-name (or -A APP, for its "
        "beat_lock_name)\n"
    )
    document = json.loads(run("status", "--json", "--lock-url", lock.url).stdout)
    assert (document["lease"], document["lock_names"]) == (None, [lock.name])


def test_an_empty_store_says_no_beat_has_run_there(redis_url):
    result = run("status", "--lock-url", redis_url)
    assert result.exit_code == 2
    assert result.stderr.endswith("; it holds no lock yet (no beat has run with this lock URL)\n")


@pytest.mark.parametrize("lock", ["dynamodb"], indirect=True)
def test_beat_led_from_ecs_and_two_routes_mid_rollout_on_one_screen(lock):
    lock.store.pin(lock.name, "ecs", expected_token=None, new_version="p1", end_tenure=True)
    lock.join("paas")
    leader = lock.join("ecs")
    lock.wait_leader("ecs")
    lock.wait_for(lambda _r: len(lock.store.participants(lock.name)) == 2)
    token = leader.token
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    entries = ("letters", "invoices")
    assert (
        lock.store.fence(lock.name, entries, identity=leader.identity, token=token, everything=True)
        is not None
    )
    for minutes_ago, entry in enumerate(entries):
        at = slot - timedelta(minutes=minutes_ago)
        lock.store.claim(
            lock.name, entry, at, identity=leader.identity, token=token, claim_id=entry
        )
    options = ("--lock-url", lock.url, "--lock-name", lock.name)
    routes = Routes(Connection(lock_url=lock.url))
    now = datetime.now(UTC)
    for name, kind, reached in (("web", "cloudfront", 2), ("api", "cloudfront", 1)):
        create = f"route create {name} --kind {kind} --old https://paas.example.com --new"
        assert run(*create.split(), "https://ecs.example.com", *options).exit_code == 0
        steps = (Decimal(1), Decimal(5), Decimal(25), Decimal(50), Decimal(100))
        rollout = Rollout(
            "r",
            "alice@ops-1",
            "running",
            steps,
            1800,
            ("5xx",),
            True,
            reached,
            iso_utc(now),
            iso_utc(now),
        )
        routes.write(
            routes.get(name),
            steps[reached - 1],
            rollout,
            action="rollout-step",
            reason=f"step {reached}/5",
        )

    result = run("status", *options)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert len(lines) <= 30
    assert f"  holder:       ecs (instance {leader.identity.instance_id})" in lines
    assert "  pin:          ecs" in lines
    assert any(line.startswith("    ecs: 1 live: leader (seen ") for line in lines)
    assert any(line.startswith("    paas: 1 live: standby (seen ") for line in lines)
    (last_runs,) = [line for line in lines if line.startswith("  last runs:")]
    assert last_runs.startswith("  last runs:    letters ") and "invoices" in last_runs, last_runs
    assert "  late runs:    unknown: give -A APP to check for late runs" in lines
    due = (now + timedelta(minutes=30)).strftime("%H:%MZ")
    at = lines.index("Routes (2) in dynamodb table " + lock.name + ":")
    assert lines[at + 1 :: 3] == [
        "  api (cloudfront): 1% to ecs, the rest to paas, since " + lines[at + 1][-9:],
        "  web (cloudfront): 5% to ecs, the rest to paas, since " + lines[at + 4][-9:],
    ]
    assert lines[at + 3] == f"    rollout: step 1/5 (1%), next 5% at {due}; running, alice@ops-1"
    assert lines[at + 6] == f"    rollout: step 2/5 (5%), next 25% at {due}; running, alice@ops-1"

    document = json.loads(run("status", "--json", *options).stdout)
    assert [r["rollout"]["next_step"] for r in document["routes"]] == ["5", "25"]
    assert [run["entry"] for run in document["last_runs"]] == ["letters", "invoices"]
    assert document["attention"] == []


def test_a_run_overdue_by_its_schedule_is_late():
    now = datetime(2026, 11, 29, 10, 0, 30, tzinfo=UTC)
    schedule = AppSchedule(
        schedules={"every-minute": crontab(), "hourly": crontab(minute=0)},
        tz=UTC,
        critical=(),
        anchors={},
        anchors_unknown=None,
    )

    def claim(entry: str, minutes_ago: int) -> EntryClaim:
        slot = now.replace(second=0) - timedelta(minutes=minutes_ago)
        return EntryClaim(entry, slot, 1, 1, "ecs", "c")

    claims = {"every-minute": claim("every-minute", 5), "hourly": claim("hourly", 0)}
    (late,) = late_runs(schedule, claims, now)
    assert late == LateRun(
        "every-minute", now.replace(second=0) - timedelta(minutes=4), claims["every-minute"].slot
    )
    assert late.describe(now) == "every-minute due 09:56:00Z is 4m30s late"
    assert late_runs(schedule, {"every-minute": claim("every-minute", 1)}, now) == []
