"""Fast tests of what the operator reads: progress on a terminal and in a log, colour, the
report's JSON fields and text, and the IAM policies."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from click import unstyle as click_unstyle

from beat_handover.beat_lock.identity import Identity
from beat_handover.handover.cli.console import Console
from beat_handover.handover.exit_codes import ExitCode
from beat_handover.handover.iam import policies
from beat_handover.handover.procedure.model import (
    Check,
    CheckStatus,
    HandoverReport,
    Outcome,
    RollbackReport,
    Tenure,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_a_plain_line_every_five_seconds():
    stream = io.StringIO()
    console = Console(stream=stream)
    for tenth in range(0, 121):
        console.progress("waiting for ecs to take over", tenth / 10)
    console.line("ecs renewed")
    assert stream.getvalue() == (
        "  waiting for ecs to take over: 5s\n  waiting for ecs to take over: 10s\necs renewed\n"
    )


def test_progress_on_a_terminal_rewrites_one_line_and_erases_it_before_other_output():
    stream = Terminal()
    console = Console(stream=stream)
    console.progress("waiting", 0.0)
    console.progress("waiting", 0.05)  # too soon after the last refresh: not drawn
    console.progress("waiting", 0.25)
    console.progress("waiting", 12.25)
    console.line("done")
    assert stream.getvalue() == (
        "\r  waiting: 0s"
        "\r  waiting: 0.2s"  # as long as the line before: nothing of it is left
        "\r  waiting: 12.2s"
        "\r                \r"  # erased: no stale count stays on screen
        "done\n"
    )


@pytest.mark.parametrize(
    ("no_color_flag", "environ", "coloured"),
    [(False, {}, True), (True, {}, False), (False, {"NO_COLOR": "1"}, False)],
)
def test_colour_only_on_a_terminal_and_never_when_asked_not_to(
    no_color_flag, environ, coloured, monkeypatch
):
    monkeypatch.delenv("NO_COLOR", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    terminal = Terminal()
    console = Console(stream=terminal, no_color=no_color_flag)
    console.check(Check("store reachable", CheckStatus.REFUSED, "no"))
    console.loud("look")
    assert ("\x1b[" in terminal.getvalue()) is coloured
    assert "[REFUSED] store reachable: no" in click_unstyle(terminal.getvalue())
    piped = io.StringIO()
    Console(stream=piped).loud("look")
    assert piped.getvalue() == "look\n"


def test_json_mode_sends_human_text_to_stderr(capsys):
    Console(json_mode=True).line("checking")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "checking\n")


def test_report_json_has_every_field_of_the_report():
    paas = Tenure(Identity("paas", "web-1:10:aa"), 7)
    ecs = Tenure(Identity("ecs", "task-1:20:bb"), 9)
    report = HandoverReport(
        lock="beat",
        store="redis at redis://h:1/0",
        target="ecs",
        outcome=Outcome.DONE,
        message="Done",
        checks=[Check("store reachable", CheckStatus.OK, "answered")],
        previous=paas,
        announced_seconds=1.45678,
        pin_token=8,
        new=ecs,
        acquired_after_seconds=0.31234,
        gap_seconds=0.35678,
        next_critical_entry="letters",
        next_critical_at=datetime(2026, 3, 1, 13, tzinfo=UTC),
    )
    document = json.loads(json.dumps(report.as_json()))
    assert document == {
        "result": "done",
        "exit_code": 0,
        "message": "Done",
        "lock": "beat",
        "store": "redis at redis://h:1/0",
        "target": "ecs",
        "forced": False,
        "checks": [{"name": "store reachable", "status": "ok", "summary": "answered"}],
        "from": {"environment": "paas", "instance": "web-1:10:aa", "token": 7},
        "announced_seconds": 1.4568,
        "pin_token": 8,
        "to": {"environment": "ecs", "instance": "task-1:20:bb", "token": 9},
        "acquired_after_seconds": 0.3123,
        "gap_seconds": 0.3568,
        "next_critical_run": {
            "entry": "letters",
            "at": "2026-03-01T13:00:00+00:00",
            "sender": {"environment": "ecs", "instance": "task-1:20:bb", "token": 9},
        },
        "rollback": None,
    }
    assert report.lines() == [
        "Done",
        "  from:  paas (instance web-1:10:aa, token 7)",
        "  to:    ecs (instance task-1:20:bb, token 9)",
        "  gap:   0.357s from the end of the old tenure (token 8) to the new holder's first "
        "renewal",
        "  next critical run: letters at 2026-03-01 13:00:00.000Z, sent by ecs/task-1:20:bb",
    ]


def test_a_pin_in_place_reports_the_kept_leader_and_a_rollback_its_json():
    ecs = Tenure(Identity("ecs", "task-1:20:bb"), 9)
    pinned = HandoverReport(
        lock="beat", store="s", target="ecs", outcome=Outcome.PINNED, message="Pinned", new=ecs
    )
    assert pinned.lines() == [
        "Pinned",
        "  leader: ecs (instance task-1:20:bb, token 9) (unchanged)",
        "  next critical run: none scheduled (or not known without the app's schedule)",
    ]
    assert pinned.as_json()["result"] == "pinned" and pinned.exit_code is ExitCode.OK
    rollback = RollbackReport("ecs did not take over", "paas", True, 11, ecs, None)
    assert rollback.as_json() == {
        "reason": "ecs did not take over",
        "to": "paas",
        "ok": True,
        "token": 11,
        "leader": {"environment": "ecs", "instance": "task-1:20:bb", "token": 9},
        "error": None,
    }


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.DONE, 0),
        (Outcome.PINNED, 0),
        (Outcome.NOTHING_TO_DO, 0),
        (Outcome.DRY_RUN, 0),
        (Outcome.REFUSED, 3),
        (Outcome.CONFIG_ERROR, 2),
        (Outcome.ROLLED_BACK, 4),
        (Outcome.ROLLBACK_FAILED, 5),
        (Outcome.NEEDS_A_PERSON, 5),
    ],
)
def test_outcomes_have_the_documented_exit_codes(outcome, code):
    assert outcome.exit_code == code


def test_policies_name_one_table_and_only_each_principals_keys():
    documents = policies(
        "beat-lock", region="eu-west-2", account_id="123456789012", lock_name="beat"
    )
    arn = "arn:aws:dynamodb:eu-west-2:123456789012:table/beat-lock"
    for principal, document in documents.items():
        assert document["Version"] == "2012-10-17"
        resources = {s["Resource"] for s in document["Statement"]}
        if principal == "operator":
            resources -= {
                "arn:aws:cloudwatch:*:123456789012:alarm:*",
                "arn:aws:sqs:*:123456789012:*",
            }
        assert resources == {arn}
        assert all(s["Effect"] == "Allow" for s in document["Statement"])

    def keys(principal: str) -> set[str]:
        return {
            key
            for s in documents[principal]["Statement"]
            if "Condition" in s
            for key in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        }

    def actions(principal: str) -> set[str]:
        return {a for s in documents[principal]["Statement"] for a in s["Action"]}

    assert keys("beat") == {"lease#beat", "member#beat", "claim#beat", "audit#beat"}
    assert keys("operator") >= {"lease#beat", "member#beat", "claim#beat", "audit#beat"}
    assert actions("beat") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DescribeTable",
    }
    assert keys("router") == {"route#*"}
    assert keys("worker") == {"run#beat"}
    assert actions("worker") == {"dynamodb:PutItem"}
    assert actions("router") == {"dynamodb:GetItem"}
    assert "dynamodb:CreateTable" in actions("operator")
    assert "dynamodb:CreateTable" not in actions("beat")
    assert "dynamodb:Scan" in actions("operator")
    assert "dynamodb:DeleteItem" not in actions("operator")
