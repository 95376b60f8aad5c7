"""``make demo`` (``python -m beat_handover.handover.demo``): beat-handover working end to end on
this machine in under a minute, with no AWS account and nothing to install beyond the package.

It starts a moto server (DynamoDB, SQS), a broker that needs no server (kombu's filesystem
transport), two real ``celery beat -S leased`` processes labelled paas and ecs, and a real worker
that records every run it receives. Then, step by step, it runs the real ``handover`` commands
and checks what it shows: who leads, when it is safe to move, the handover to ecs, each slot
received exactly once and from which environment, what a SIGKILL of the ecs beat does, and a
CloudFront route moved from 0 to 10 %, then raised step by step until a CloudWatch alarm (in
moto) sends it back to 0 %, and the overview of it all (``handover status``). Every check is a
claim: the demo exits 0 if all held, 1 naming the claims that did not, 130 on Ctrl-C (143 on
SIGTERM), and in every case stops everything it started and removes its temporary directory.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.demo.narrator import ClaimFailed, Narrator
from beat_handover.handover.demo.stage import (
    APP,
    LOCK_NAME,
    REGION,
    TABLE,
    TIMEZONE,
    CommandResult,
    Interrupted,
    Stage,
    signals_interrupt,
)
from beat_handover.handover.exit_codes import ExitCode
from beat_handover.handover.testing.processes import WaitTimedOut, wait_for
from beat_handover.handover.testing.received_runs import (
    Record,
    doubled_slots,
    interval_slots,
    missing_and_extra,
    sender_runs,
)
from beat_handover.routers.cloudfront import make_handler
from beat_handover.routers.route_format import DEFAULT_CACHE_TTL_SECONDS
from beat_handover.routers.route_store import dynamodb_client, get_route, history
from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.settings import BeatLockSettings

ALARM = "web-5xx"
ROLLOUT_STEPS = (20, 30)
ROLLOUT_BAKE_SECONDS = 3  # long enough for the demo to set the alarm while the second bakes
STARTUP_SECONDS = 60.0  # a celery process on a loaded two-core machine
HEARTBEAT = timedelta(seconds=1)  # the demo app's heartbeat entry, caught up with policy all
VISITORS = 1000
PAGE_NAME = "beat-handover-quiet-windows.html"


def letters_time(now: datetime) -> str:
    """17:30 local, or 05:30 when the demo runs within an hour of 17:30, so the handover's
    10-minute guard never sees the critical run."""
    local = now.astimezone(ZoneInfo(TIMEZONE))
    at = local.replace(hour=17, minute=30, second=0, microsecond=0)
    return "17:30" if abs(local - at) > timedelta(hours=1) else "05:30"


def start(stage: Stage, say: Narrator) -> Any:
    """moto, the broker and the table, then the beats and the worker; returns the demo's app."""
    say.step("A local AWS, a broker with nothing to install, the lock table")
    moto = stage.start_aws()
    # The app reads its directory from the environment, here as in its processes: import it
    # only now, to describe its schedule and read its settings.
    os.environ.update(stage.env())
    app = importlib.import_module("beat_handover.handover.demo.app").app
    say.say(f"moto server (DynamoDB, SQS) at {moto.url} with fake credentials: no AWS account")
    say.say(f"broker: kombu's filesystem:// transport in {stage.broker_directory}")
    init = stage.handover("init")
    (stage.directory / "policies.json").write_text(init.stdout)
    say.command(init, redirect="policies.json")
    policies = json.loads(init.stdout) if init.returncode == 0 else {}
    say.say(f"policies.json: least-privilege IAM policies for {', '.join(policies)}")
    say.require(
        "handover init created the lock table",
        init.returncode == 0 and "created" in init.stderr,
        init.stderr,
    )

    say.step("Two beats and a worker")
    began = time.monotonic()
    worker = stage.worker()
    paas = stage.beat("paas")
    say.show(
        f"$ celery -A {APP} worker -P solo      (records every run in {stage.record_path.name})"
    )
    say.show(f"$ BEAT_LOCK_ENVIRONMENT=paas celery -A {APP} beat -S leased")
    wait_for(lambda: stage.leader() == "paas", STARTUP_SECONDS, "paas to lead", paas, worker)
    ecs = stage.beat("ecs")
    say.show(f"$ BEAT_LOCK_ENVIRONMENT=ecs  celery -A {APP} beat -S leased")
    wait_for(lambda: stage.live("ecs"), STARTUP_SECONDS, "ecs to stand by", ecs)
    wait_for(
        lambda: any(r.environment == "paas" for r in stage.records()),
        STARTUP_SECONDS,
        "the worker to receive a run",
        worker,
        paas,
    )
    settings = BeatLockSettings.from_app(app)
    timings = settings.timings
    say.say(
        f"lease {format_duration(timings.lease_seconds)}, renew "
        f"{format_duration(timings.renew_seconds)}, safe {format_duration(timings.safe_seconds)}, "
        f"poll {format_duration(timings.poll_seconds)} (the defaults: 30s, 5s, 20s, 1s); the "
        "schedule, in " + TIMEZONE + ":"
    )
    for name, entry in app.conf.beat_schedule.items():
        critical = ", critical" if name in settings.critical else ""
        say.show(
            f"  {name:<14} {describe(entry['schedule'])} (catch-up "
            f"{settings.policy_for(name)}{critical})"
        )
    took = format_duration(time.monotonic() - began)
    say.say(f"paas leads and ecs stands by, {took} after starting them")
    say.claim(
        "paas leads, ecs stands by, the worker receives paas's runs",
        stage.leader() == "paas" and stage.live("ecs") == 1,
    )
    return app


def describe(schedule: Any) -> str:
    """The demo schedule's entries in words: intervals, every minute, or daily at a time."""
    if isinstance(schedule, timedelta):
        return f"every {format_duration(schedule.total_seconds())}"
    if len(schedule.minute) == 60 and len(schedule.hour) == 24:
        return "every minute"
    (hour,), (minute,) = schedule.hour, schedule.minute
    return f"daily at {hour:02d}:{minute:02d}"


def look(stage: Stage, say: Narrator) -> None:
    """``handover status`` and the quiet-window report, as the operator sees them."""
    say.step("Who leads?")
    status = stage.handover("status")
    say.command(status)
    say.require(
        "handover status: paas holds the lease, one ecs beat is live",
        status.returncode == 0
        and re.search(r"holder:\s+paas", status.stdout)
        and "ecs: 1 live" in status.stdout,
    )

    say.step("When is it safe to move beat?")
    # Kept after the demo (its directory is removed) so the page can be opened in a browser.
    page = Path(tempfile.gettempdir()) / PAGE_NAME
    quiet = stage.handover("quiet-windows", "--html", str(page))
    say.command(quiet)
    say.claim(
        "the quiet-window report places the critical letters run and the windows around it",
        quiet.returncode == 0 and "critical letters:" in quiet.stdout,
    )
    drawn = page.read_text() if page.exists() else ""
    say.claim(
        f"the same windows drawn as a timeline, with no network needed: open {page}",
        "letters" in drawn and "<script src" not in drawn and "<link" not in drawn,
    )


def hand_over(stage: Stage, say: Narrator, app: Any) -> None:
    """``handover --to ecs``, then what the worker received and from whom."""
    say.step("Move beat to ecs")
    result = stage.handover("--to", "ecs")
    say.command(result)
    say.require(
        "handover --to ecs: preflight passed, ecs leads",
        result.returncode == 0 and "Done: ecs leads" in result.stdout,
    )
    sent_until(stage, "ecs", seconds=2)

    say.step("What the worker received")
    records = stage.records()
    for line in received_table(records, app):
        say.show(line)
    runs = sender_runs(records, "heartbeat")
    say.show("heartbeat's senders, in slot order:")
    for run in runs:
        say.show(f"  {run}")
    say.claim(
        "every slot arrived exactly once", not doubled_slots(records), str(doubled_slots(records))
    )
    gaps = missing(records, "heartbeat", HEARTBEAT)
    say.claim("no heartbeat slot is missing", not gaps, ", ".join(gaps))
    say.claim(
        "the sender changed once, paas -> ecs, to a higher token",
        [run.environment for run in runs] == ["paas", "ecs"] and runs[0].token < runs[1].token,
    )


def crash(stage: Stage, say: Narrator, app: Any) -> None:
    """SIGKILL the ecs beat: nobody in ecs renews the pinned lease, so after the fallback time
    paas takes it, moves the pin to itself and catches up what fell due meanwhile."""
    say.step("kill -9 the ecs beat")
    ecs = next(proc for proc in stage.processes.procs if proc.name == "beat-ecs")
    # Kill just after a run arrived: the next claim is most of a second away, so the kill
    # does not fall between a claim and its publish (that run would be lost, by design).
    seen = len(stage.records())
    wait_for(lambda: len(stage.records()) > seen, STARTUP_SECONDS, "a run from ecs", ecs)
    killed_at = time.time()
    ecs.kill()
    say.show(f"$ kill -9 {ecs.pid}      (the ecs beat)")
    claimed_by_ecs = {
        name: claim.slot for name, claim in stage.store().last_claims(LOCK_NAME).items()
    }
    settings = BeatLockSettings.from_app(app)
    fallback = settings.timings.fallback_seconds
    say.say(
        f"Beat is pinned to ecs, and ecs has no other beat. paas leaves the pin alone "
        f"while anyone in ecs renews the lease; after {format_duration(fallback)} of silence "
        "(beat_lock_fallback_seconds) it takes the lease and moves the pin to paas."
    )
    first = wait_for(
        lambda: next(
            (r for r in stage.records() if r.environment == "paas" and r.received_at > killed_at),
            None,
        ),
        STARTUP_SECONDS + fallback,
        "paas to fall back and dispatch",
    )
    taken_at = first.received_at
    say.say(f"paas's first run arrived {format_duration(taken_at - killed_at)} after the kill")
    # The fallback counts from the last version paas saw: ecs's last renewal, at most one renew
    # interval before the kill.
    earliest = fallback - settings.timings.renew_seconds
    say.claim(
        "paas waited out the fallback time before sending",
        taken_at - killed_at >= earliest,
        f"{format_duration(taken_at - killed_at)} after the kill, earlier than "
        f"{format_duration(earliest)}",
    )
    status = stage.handover("status")
    say.command(status)
    record = stage.lease()
    say.claim(
        "the pin moved to paas with the lease",
        record is not None
        and record.pin == "paas"
        and record.holder is not None
        and record.holder.environment == "paas",
        f"pin {record.pin if record else None}",
    )
    history = stage.handover("history")
    say.command(history)
    say.claim("the fallback is in the lock's history", "fallback" in history.stdout)
    sent_until(stage, "paas", seconds=2)
    records = stage.records()
    late = [
        r
        for r in records
        if r.environment == "paas"
        and r.entry == "heartbeat"
        and killed_at < r.slot.timestamp() < taken_at - 1
    ]
    say.say(
        f"catch-up: paas sent the {len(late)} heartbeat runs that fell due while nobody "
        f"led, late (policy all); the entries with policy latest sent their runs still "
        f"within the {format_duration(settings.grace_seconds)} on-time grace, or else only the "
        "newest"
    )
    say.claim(
        "every slot still arrived exactly once",
        not doubled_slots(records),
        str(doubled_slots(records)),
    )
    gaps = missing(records, "heartbeat", HEARTBEAT)
    lost = claimed_by_ecs.get("heartbeat")
    if lost is not None and gaps == [lost.isoformat()]:
        say.say(
            f"heartbeat slot {lost:%H:%M:%S} was claimed by ecs in the instant it was killed "
            "and never published: lost, not resent (resending could send it twice)"
        )
        gaps = []
    say.claim(
        "no heartbeat slot is missing: the missed ones were caught up", not gaps, ", ".join(gaps)
    )


def route(stage: Stage, say: Narrator) -> None:
    """A CloudFront route from 0 to 10 %, and visitors through the real handler."""
    say.step("Move a tenth of web visitors to ecs")
    create = stage.handover(
        "route",
        "create",
        "web",
        "--kind",
        "cloudfront",
        "--old",
        "https://paas.example.com",
        "--new",
        "https://ecs.example.com",
        "--reason",
        "ecs ready for web traffic",
    )
    say.command(create)
    say.require("handover route create web: at 0 %", create.returncode == 0)
    now = [0.0]
    metric_lines: list[str] = []
    handler = make_handler(
        {
            "route": "web",
            "table": TABLE,
            "region": REGION,
            "endpoint_url": stage.moto.url,
            "sticky_cookie": "visitor",
        },
        clock=lambda: now[0],
        emit=metric_lines.append,
    )
    say.say(
        f"{VISITORS:,} visitors (cookie visitor=v0001..v{VISITORS:04d}) through the CloudFront "
        "origin-request handler (beat_handover.routers.cloudfront.make_handler, in this "
        "process), sticky "
        "on the cookie:"
    )
    before = visit(handler)
    say.show(f"  at 0 %                        {split(before)}")
    say.claim("at 0 % no visitor goes to ecs", "ecs" not in before.values())

    raised = stage.handover("route", "set", "web", "10", "--reason", "first tenth of visitors")
    say.command(raised)
    say.require("handover route set web 10", raised.returncode == 0)
    cached = visit(handler)
    say.show(
        f"  at 10 %, the same container   {split(cached)}   (it re-reads the route at most "
        f"every {format_duration(DEFAULT_CACHE_TTL_SECONDS)})"
    )
    now[0] += DEFAULT_CACHE_TTL_SECONDS + 1
    after = visit(handler)
    share = sum(side == "ecs" for side in after.values()) / VISITORS
    say.show(
        f"  at 10 %, {format_duration(DEFAULT_CACHE_TTL_SECONDS + 1)} later            "
        f"{split(after)}   "
        f"({share:.1%}; the handler's clock moved on)"
    )
    # Three standard deviations of the share of n independent draws at 10 %.
    tolerance = 3 * math.sqrt(0.1 * 0.9 / VISITORS)
    say.claim(
        f"once the cache TTL has passed, 10 % +- {tolerance:.1%} of visitors go to ecs",
        abs(share - 0.1) <= tolerance,
        f"{share:.1%}",
    )
    again = visit(handler)
    say.claim("every visitor keeps its side on the next request (sticky cookie)", again == after)
    say.say(
        f"The handler wrote {len(metric_lines)} CloudWatch metric lines (EMF, one per route "
        "read), the counts a dashboard shows."
    )


def rollout(stage: Stage, say: Narrator) -> None:
    """``handover route rollout`` raises web step by step; an alarm set during the second
    step's bake sends it back to 0 %."""
    say.step("Raise web step by step; an alarm aborts")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        MetricName="5xxErrorRate",
        Namespace="AWS/CloudFront",
        Dimensions=[{"Name": "DistributionId", "Value": "EDFDVBD6EXAMPLE"}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="no 5xx")
    say.say(
        f"CloudWatch alarm {ALARM} (web's 5xx rate over 5 %), in moto, is OK. The rollout "
        f"holds each step for its bake time and looks at the alarm all along; here the alarm "
        f"fires while {ROLLOUT_STEPS[1]} % bakes (the demo sets its state, as a burst of 5xx "
        "would)."
    )
    ran: list[CommandResult] = []
    command = threading.Thread(
        target=lambda: ran.append(
            stage.handover(
                "route",
                "rollout",
                "web",
                "--steps",
                ",".join(map(str, ROLLOUT_STEPS)),
                "--bake",
                f"{ROLLOUT_BAKE_SECONDS}s",
                "--abort-on-alarm",
                ALARM,
            )
        ),
        daemon=True,
    )
    command.start()
    client = dynamodb_client(REGION)
    wait_for(
        lambda: (
            get_route(client, TABLE, "web").percent == ROLLOUT_STEPS[1] or not command.is_alive()
        ),
        STARTUP_SECONDS,
        f"web to reach {ROLLOUT_STEPS[1]} %",
    )
    cloudwatch.set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 5xx rate 9.5 > 5"
    )
    command.join(STARTUP_SECONDS)
    if not ran:
        raise RuntimeError("handover route rollout did not finish")
    (result,) = ran
    say.command(result)
    after = get_route(client, TABLE, "web")
    changes = [
        (change.action, change.new_percent)
        for change in reversed(history(client, TABLE, "web", limit=4))
    ]
    say.claim(
        "the first step baked with the alarm quiet, the second was aborted by it: exit 4",
        result.returncode == ExitCode.ROLLED_BACK
        and changes[1:]
        == [
            ("rollout-step", ROLLOUT_STEPS[0]),
            ("rollout-step", ROLLOUT_STEPS[1]),
            ("rollout-abort", 0),
        ],
        f"exit {result.returncode}, changes {changes}",
    )
    say.claim(
        "web is back at 0 %, the rollout over, the alarm named in the route's history",
        after.percent == 0 and after.rollout is None and ALARM in after.reason,
        f"{after.percent} %, {after.reason!r}",
    )
    shown = stage.handover("route", "history", "web", "--limit", "4")
    say.command(shown)


def overview(stage: Stage, say: Narrator) -> None:
    """``handover status``: beat and every route, on one screen."""
    say.step("The whole migration at a glance")
    status = stage.handover("status")
    say.command(status)
    lines = status.stdout.splitlines()
    say.claim(
        "handover status shows beat's leader and the web route with its last change, in 80 columns",
        status.returncode == 0
        and re.search(r"holder:\s+paas", status.stdout)
        and "  web (cloudfront): 0% to ecs, the rest to paas" in status.stdout
        and "    last: rollout-abort " in status.stdout
        and all(len(line) <= 80 for line in lines),
    )


def visit(handler: Any) -> dict[str, str]:
    """One request per visitor; the side each was sent to."""
    sides = {}
    for number in range(1, VISITORS + 1):
        visitor = f"v{number:04d}"
        request = handler(cloudfront_event(visitor), None)
        sides[visitor] = request["headers"]["x-route-side"][0]["value"]
    return sides


def split(sides: dict[str, str]) -> str:
    counts = Counter(sides.values())
    return f"paas {counts['paas']:4d}, ecs {counts['ecs']:4d}"


def cloudfront_event(visitor: str) -> dict[str, Any]:
    """A CloudFront origin-request event whose origin is the distribution's own (paas)."""
    return {
        "Records": [
            {
                "cf": {
                    "config": {"distributionId": "EDFDVBD6EXAMPLE", "eventType": "origin-request"},
                    "request": {
                        "clientIp": "203.0.113.178",
                        "method": "GET",
                        "uri": "/letters",
                        "querystring": "",
                        "headers": {
                            "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
                            "cookie": [{"key": "Cookie", "value": f"visitor={visitor}"}],
                        },
                        "origin": {
                            "custom": {
                                "customHeaders": {},
                                "domainName": "paas.example.com",
                                "keepaliveTimeout": 5,
                                "path": "",
                                "port": 443,
                                "protocol": "https",
                                "readTimeout": 30,
                                "sslProtocols": ["TLSv1.2"],
                            }
                        },
                    },
                }
            }
        ]
    }


def sent_until(stage: Stage, environment: str, *, seconds: float) -> None:
    """Wait until the worker has ``environment``'s heartbeat for a slot ``seconds`` from now."""
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    wait_for(
        lambda: any(
            r.environment == environment and r.entry == "heartbeat" and r.slot >= until
            for r in stage.records()
        ),
        STARTUP_SECONDS,
        f"{environment} to send heartbeats up to {until:%H:%M:%S}",
        *stage.processes.procs,
    )


def missing(records: list[Record], entry: str, step: timedelta) -> list[str]:
    """Slots of an interval entry between its first and last received slot that never arrived
    (ISO 8601)."""
    slots = sorted({r.slot for r in records if r.entry == entry})
    if not slots:
        return []
    return missing_and_extra(slots, interval_slots(slots[0], step, slots[-1]))[0]


def received_table(records: list[Record], app: Any) -> list[str]:
    """Per entry: runs received, from which environment, slots received twice, slots missing."""
    lines = [f"{'ENTRY':<14} {'RUNS':>5} {'PAAS':>5} {'ECS':>5} {'TWICE':>6} {'MISSING':>8}"]
    for name, entry in app.conf.beat_schedule.items():
        mine = [r for r in records if r.entry == name]
        senders = Counter(r.environment for r in mine)
        schedule = entry["schedule"]
        gaps = str(len(missing(mine, name, schedule))) if isinstance(schedule, timedelta) else "-"
        lines.append(
            f"{name:<14} {len(mine):>5} {senders['paas']:>5} {senders['ecs']:>5} "
            f"{len(doubled_slots(mine)):>6} {gaps:>8}"
        )
    return lines


def story(stage: Stage, say: Narrator) -> None:
    app = start(stage, say)
    look(stage, say)
    hand_over(stage, say, app)
    crash(stage, say, app)
    route(stage, say)
    rollout(stage, say)
    overview(stage, say)


def run() -> int:
    """The demo; returns its exit status."""
    began = time.monotonic()
    say = Narrator()
    stage = Stage(letters_time(datetime.now(UTC)))
    say.intro(stage.directory)
    status = None
    try:
        with signals_interrupt():
            story(stage, say)
    except KeyboardInterrupt:
        status = ExitCode.INTERRUPTED
        say.interrupted("Ctrl-C")
    except Interrupted as exc:
        status = 128 + exc.signum
        say.interrupted(str(exc))
    except (ClaimFailed, WaitTimedOut, subprocess.TimeoutExpired, RuntimeError, ConfigError) as exc:
        say.broke_off(exc)
    finally:
        stage.close()
    say.cleaned_up(stage.stopped, stage.directory)
    if status is not None:
        return status
    return ExitCode.OK if say.summary(time.monotonic() - began) else ExitCode.DEMO_FAILED


def main() -> None:
    sys.exit(run())
