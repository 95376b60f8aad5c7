"""The preflight of ``handover --to`` applies the quiet-window report's rule: a guard on both sides
of every critical run. Each test runs a real dry-run handover (real store, real participants, the
outlook read from a real Celery app) and compares its verdict with the report's."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from celery.schedules import crontab

from beat_handover.handover.cli.console import Console
from beat_handover.handover.connection import Connection
from beat_handover.handover.procedure.flow import hand_over
from beat_handover.handover.procedure.model import CheckStatus, HandoverRequest, Outcome
from beat_handover.handover.procedure.outlook import outlook_for
from beat_handover.scheduler.quiet import quiet_windows
from tests.handover.conftest import TIMINGS

pytestmark = pytest.mark.integration

GUARD = timedelta(minutes=10)


def app_with(schedule: dict, critical: list[str]) -> Celery:
    app = Celery("preflight-rule-tests", set_as_current=False)
    app.conf.update(timezone="UTC", beat_schedule=schedule, beat_lock_critical=critical)
    return app


def dry_run(lock, app: Celery):
    """A dry-run handover to ecs with the 10m guard: the critical check and the whole text."""
    connection = Connection(app=app, lock_url=lock.url, lock_name=lock.name)
    console = Console(stream=io.StringIO())
    report = hand_over(
        lock.store,
        lock.name,
        HandoverRequest(
            target="ecs",
            guard_seconds=GUARD.total_seconds(),
            timeout_seconds=60.0,
            poll_seconds=TIMINGS.poll_seconds,
            dry_run=True,
        ),
        outlook=outlook_for(connection, guard_seconds=GUARD.total_seconds(), window_seconds=60),
        progress=console,
    )
    (check,) = [c for c in report.checks if c.name == "critical entries"]
    return report, check, console.stream.getvalue()


@pytest.fixture
def ecs_stands_by(lock, paas_leads):
    lock.join("ecs")
    lock.wait_for(lambda _r: len(lock.store.participants(lock.name)) == 2)


def test_two_minutes_after_a_critical_run_the_preflight_refuses_as_the_report_does(
    lock, ecs_stands_by
):
    now = datetime.now(UTC)
    ran = (now - timedelta(minutes=2)).replace(second=0, microsecond=0)
    app = app_with({"letters": {"task": "t", "schedule": crontab(minute=ran.minute)}}, ["letters"])
    report_now = quiet_windows(
        {"letters": crontab(minute=ran.minute)},
        ["letters"],
        now,
        now + timedelta(hours=2),
        tz=UTC,
        guard=GUARD,
        min_length=timedelta(minutes=1),
    )
    assert report_now.windows[0].start == ran + GUARD  # the report: not quiet now

    report, check, text = dry_run(lock, app)

    assert check.status is CheckStatus.REFUSED, text
    assert report.outcome is Outcome.REFUSED
    assert f"letters ran at {ran:%Y-%m-%d %H:%M}:00.000Z (" in check.summary
    assert "ago) is within the 10m guard of a handover starting now" in check.summary
    assert f"the next quiet window starts at {ran + GUARD:%Y-%m-%d %H:%M}:00.000Z" in check.summary
    assert check.summary.endswith("; wait for it, or use --force")


def test_a_critical_entry_that_leaves_no_window_is_named_and_nothing_is_to_be_waited_for(
    lock, ecs_stands_by
):
    app = app_with(
        {
            "letters": {"task": "t", "schedule": crontab(minute="*/15")},
            "nightly": {"task": "t", "schedule": crontab(minute=0, hour=3)},
        },
        ["letters", "nightly"],
    )

    _, check, text = dry_run(lock, app)

    assert check.status is CheckStatus.REFUSED, text
    assert "within the 10m guard of a handover starting now" in check.summary
    assert (
        "no quiet window can come: letters runs at most 15m apart, and a window of 1m needs "
        "21m between two critical runs (the 10m guard on both sides); shorten --guard, or use "
        "--force"
    ) in check.summary
    assert "wait for it" not in text
