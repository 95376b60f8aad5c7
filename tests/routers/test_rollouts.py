"""``handover route rollout`` against the moto server's DynamoDB and CloudWatch: steps with short
bakes, an alarm (or INSUFFICIENT_DATA) setting the route back to 0 %, Ctrl-C and resume, a rival
rollout refused and a silent one taken over, a change by someone else stopping the rollout, and
the refusals of bad steps. Alarm states are set with CloudWatch's SetAlarmState, as moto allows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from beat_handover.handover.alarms import Alarms
from beat_handover.handover.rollouts import Outcome, Plan, RolloutRun
from beat_handover.handover.testing.processes import wait_for
from beat_handover.routers.route_format import Rollout, iso_utc
from beat_handover.routers.route_store import get_route, history
from tests.routers.conftest import REGION, origin_route

pytestmark = pytest.mark.integration


class Recorded:
    """A rollout's progress, kept (the command line prints it)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.waits = 0

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def loud(self, text: str) -> None:
        self.lines.append(text)

    def progress(self, label: str, elapsed_seconds: float) -> None:
        self.waits += 1

    def end_wait(self) -> None:
        pass


@pytest.fixture(scope="session")
def cloudwatch(moto_server):
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def alarm(cloudwatch, unique_name):
    """An alarm named after the test, in state OK; returns a setter of its state."""
    name = f"{unique_name}-5xx"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="5xxErrorRate",
        Namespace="AWS/CloudFront",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )

    def set_state(state: str, reason: str = "set by the test") -> str:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
        return name

    set_state("OK")
    return set_state


@pytest.fixture
def web(put_route, name):
    put_route(origin_route(name))
    return name


def actions(dynamodb, table, name):
    return [change.action for change in reversed(history(dynamodb, table, name))]


def rollout_run(routes, name, sleep, progress=None) -> RolloutRun:
    return RolloutRun(
        routes,
        name,
        alarms_for=lambda plan: Alarms(
            plan.alarms, region=REGION, insufficient_data_aborts=plan.insufficient_data_aborts
        ),
        progress=progress or Recorded(),
        sleep=sleep,
        poll_seconds=0.1,
    )


def test_a_rollout_raises_each_step_after_its_bake(handover, web, alarm, dynamodb, route_table):
    code, out, err = handover(
        "route",
        "rollout",
        web,
        "--steps",
        "1,5,50",
        "--bake",
        "1s",
        "--abort-on-alarm",
        alarm("OK"),
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"rollout of route {web}: steps 1,5,50%, bake 1s, abort on alarm {alarm('OK')} (and "
        "INSUFFICIENT_DATA)",
        "step 1/3: 0% -> 1% to ecs (version 3); baking 1s",
        "step 2/3: 1% -> 5% to ecs (version 4); baking 1s",
        "step 3/3: 5% -> 50% to ecs (version 5); baking 1s",
        f"rollout of route {web} done: 50% to ecs after 3 steps, every bake quiet",
    ]
    route = get_route(dynamodb, route_table, web)
    assert (route.percent, route.rollout) == (Decimal(50), None)
    assert actions(dynamodb, route_table, web) == [
        "create",
        "rollout-start",
        "rollout-step",
        "rollout-step",
        "rollout-step",
        "rollout-done",
    ]


def test_an_alarm_during_a_bake_sets_the_route_back_to_zero(
    routes, web, alarm, dynamodb, route_table
):
    def sleep(_seconds: float) -> None:
        if get_route(dynamodb, route_table, web).percent == 5:
            alarm("ALARM", "Threshold Crossed: 1 datapoint [9.5] > 5")

    plan = Plan((Decimal(1), Decimal(5), Decimal(25)), 1, (alarm("OK"),))
    result = rollout_run(routes, web, sleep).run(plan)

    assert result.outcome is Outcome.ABORTED
    route = get_route(dynamodb, route_table, web)
    assert (route.percent, route.rollout) == (Decimal(0), None)
    (newest, *_) = history(dynamodb, route_table, web)
    assert (newest.action, newest.old_percent, newest.new_percent) == (
        "rollout-abort",
        Decimal(5),
        Decimal(0),
    )
    assert newest.reason == (
        f"alarm {alarm('ALARM')!r} is ALARM (Threshold Crossed: 1 datapoint [9.5] > 5) at step "
        "2/3 (5%)"
    )
    assert result.message.startswith(f"ABORTED: {newest.reason}; route {web} is back at 0%")


@pytest.mark.parametrize(
    ("state", "allow", "code"),
    [("ALARM", False, 4), ("INSUFFICIENT_DATA", False, 4), ("INSUFFICIENT_DATA", True, 0)],
)
def test_the_states_that_abort(handover, web, alarm, state, allow, code, dynamodb, route_table):
    handover("route", "set", web, "2")
    extra = ["--allow-insufficient-data"] if allow else []
    got, out, _ = handover(
        "route",
        "rollout",
        web,
        "--steps",
        "10",
        "--bake",
        "1s",
        "--abort-on-alarm",
        alarm(state),
        *extra,
    )
    assert got == code
    route = get_route(dynamodb, route_table, web)
    if code == 4:
        assert route.percent == 0
        assert f"ABORTED: alarm {alarm(state)!r} is {state} (set by the test) at the start" in out
        assert actions(dynamodb, route_table, web)[-2:] == ["rollout-start", "rollout-abort"]
    else:
        assert route.percent == 10


def test_ctrl_c_leaves_the_step_and_the_rollout_resumes(
    handover,
    routes,
    web,
    alarm,
    dynamodb,
    route_table,
):
    def sleep(_seconds: float) -> None:
        if get_route(dynamodb, route_table, web).percent == 5:
            raise KeyboardInterrupt

    plan = Plan((Decimal(1), Decimal(5), Decimal(25)), 1, (alarm("OK"),))
    result = rollout_run(routes, web, sleep).run(plan)

    assert result.outcome is Outcome.STOPPED
    assert result.message.startswith(
        f"Interrupted (Ctrl-C): route {web} stays at 5% (step 2 of 3). Resume with `handover "
        f"route rollout {web}`"
    )
    route = get_route(dynamodb, route_table, web)
    assert (route.percent, route.rollout.state, route.rollout.reached) == (Decimal(5), "stopped", 2)
    code, out, _ = handover("status", "--json")
    assert code == 2  # no beat lock in this table, but the routes are there
    (shown,) = [r for r in json.loads(out)["routes"] if r["name"] == web]
    assert shown["rollout"]["state"] == "stopped" and shown["rollout"]["next_step"] == "25"

    code, _, err = handover("route", "rollout", web, "--steps", "1,5,50", "--bake", "1s")
    assert code == 2 and "without --steps to resume it" in err
    code, out, _ = handover("route", "rollout", web)
    assert code == 0, out
    assert "step 3/3: 5% -> 25% to ecs" in out
    assert actions(dynamodb, route_table, web)[1:] == [
        "rollout-start",
        "rollout-step",
        "rollout-step",
        "rollout-stop",
        "rollout-resume",
        "rollout-step",
        "rollout-done",
    ]


def test_a_rival_rollout_is_refused_and_a_silent_one_taken_over_on_request(
    handover,
    routes,
    web,
    dynamodb,
    route_table,
):
    now = datetime.now(UTC)
    running = Rollout(
        id="r1",
        owner="bob@elsewhere",
        state="running",
        steps=(Decimal(1), Decimal(2)),
        bake_seconds=1,
        alarms=(),
        insufficient_data_aborts=True,
        reached=1,
        since=iso_utc(now),
        started_at=iso_utc(now),
    )
    route = routes.write(routes.get(web), Decimal(1), running, action="rollout-start", reason="")

    code, _, err = handover("route", "rollout", web)
    assert code == 3
    assert err.startswith(f"Error: bob@elsewhere is running a rollout of route {web!r} (step 1/2")
    assert "a second one cannot run beside it" in err
    assert handover("route", "rollout", web, "--take-over")[0] == 3
    code, _, err = handover("route", "set", web, "50")
    assert code == 2 and "has a rollout running (bob@elsewhere)" in err

    silent = replace(running, since=iso_utc(now - timedelta(hours=1)))
    routes.write(route, Decimal(1), silent, action="rollout-step", reason="")
    code, _, err = handover("route", "rollout", web)
    assert code == 3 and f"`handover route rollout {web} --take-over`" in err
    code, out, _ = handover("route", "rollout", web, "--take-over")
    assert code == 0, out
    assert get_route(dynamodb, route_table, web).percent == 2
    assert "rollout-takeover" in actions(dynamodb, route_table, web)


def test_a_change_by_someone_else_stops_the_rollout(routes, web, dynamodb, route_table):
    def sleep(_seconds: float) -> None:
        routes.change(web, Decimal(0), action="abort", reason="5xx seen by hand")

    result = rollout_run(routes, web, sleep).run(Plan((Decimal(1), Decimal(5)), 1, ()))

    assert result.outcome is Outcome.HALTED
    assert "the rollout stops and writes nothing" in result.message
    assert actions(dynamodb, route_table, web)[-3:] == ["rollout-start", "rollout-step", "abort"]
    route = get_route(dynamodb, route_table, web)
    assert (route.percent, route.rollout) == (Decimal(0), None)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("5,1", "--steps must rise step by step, above 0 (such as 1,5,25,50,100), got 5,1\n"),
        ("0,5", "--steps must rise step by step, above 0 (such as 1,5,25,50,100), got 0,5\n"),
        ("150", "--steps must be a number from 0 to 100 with at most 4 decimal places"),
        ("0.00001", "--steps must be a number from 0 to 100 with at most 4 decimal places"),
        ("1,,2", "--steps must be a number from 0 to 100 with at most 4 decimal places"),
        ("10,100", "by more than 50 points in one step (10% -> 100%); add steps in between, or"),
    ],
)
def test_bad_steps_are_refused_before_anything_is_written(
    handover,
    web,
    steps,
    message,
    dynamodb,
    route_table,
):
    code, out, err = handover("route", "rollout", web, "--steps", steps, "--bake", "1s")
    assert (code, out) == (2, "")
    assert message in err
    assert actions(dynamodb, route_table, web) == ["create"]


def test_a_big_jump_goes_with_yes_and_an_unknown_alarm_is_refused(
    handover,
    web,
    dynamodb,
    route_table,
):
    code, _, err = handover(
        "route",
        "rollout",
        web,
        *["--steps", "0.5,100", "--bake", "1s", "--yes", "--abort-on-alarm", "nope"],
    )
    assert code == 2
    assert "no CloudWatch alarm named 'nope' in region eu-west-2" in err
    assert actions(dynamodb, route_table, web) == ["create"]
    code, _, _ = handover("route", "rollout", web, "--steps", "0.5,100", "--bake", "1s", "--yes")
    assert code == 0
    assert get_route(dynamodb, route_table, web).percent == 100


def test_ctrl_c_of_the_command_leaves_the_route_at_its_step(web, route_table, dynamodb, tmp_path):
    """SIGINT to a real ``handover route rollout`` process baking its first step."""
    command = [
        str(Path(sys.executable).with_name("handover")),
        *f"route rollout {web} --steps 5,50 --bake 30m".split(),
        "--lock-url",
        f"dynamodb://{route_table}?region={REGION}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(
            lambda: get_route(dynamodb, route_table, web).percent == 5,
            30,
            "the first step",
        )
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out + err
    assert out.splitlines()[-1].startswith(f"Interrupted (Ctrl-C): route {web} stays at 5% (step 1")
    route = get_route(dynamodb, route_table, web)
    assert (route.percent, route.rollout.state) == (Decimal(5), "stopped")
