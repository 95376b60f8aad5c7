"""Slots in doubt for the operator: `handover status` lists them until `handover ack-in-doubt`
clears them, which the lock's history records with the operator's name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from beat_handover.beat_lock.record import Doubt
from beat_handover.handover.procedure.audit import operator
from tests.handover.running import run

pytestmark = pytest.mark.integration

SLOT = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
LETTERS = Doubt("send-letters", SLOT, 7, "paas", "the publish failed: refused", SLOT, "h:1:ab")
LEDGER = Doubt("ledger", SLOT + timedelta(hours=1), 8, "ecs", "not acknowledged", SLOT, "h:2:cd")


@pytest.mark.parametrize("lock", ["redis", "dynamodb"], indirect=True)
def test_status_lists_slots_in_doubt_until_an_operator_acknowledges_them(lock, paas_leads):
    options = ["--lock-url", lock.url, "--lock-name", lock.name]
    lock.store.record_doubt(lock.name, LETTERS)
    lock.store.record_doubt(lock.name, LEDGER)

    status = run("status", *options).stdout
    document = json.loads(run("status", "--json", *options).stdout)
    attention = " ".join(status.split("  attention:", 1)[1].split())  # unfolded
    assert (
        "! in doubt: send-letters 2026-03-29T09:00:00+00:00 (token 7): claimed, publish not "
        "known (the publish failed: refused); check whether it ran, then `handover "
        "ack-in-doubt send-letters 2026-03-29T09:00:00+00:00`"
    ) in attention
    assert [d["entry"] for d in document["in_doubt"]] == ["ledger", "send-letters"]
    assert [line.split(" ", 3)[2] for line in document["attention"]] == ["ledger", "send-letters"]
    assert max(len(line) for line in status.splitlines()) <= 80

    wrong = run("ack-in-doubt", *options, "send-letters", "2026-03-29T10:00:00+00:00")
    assert wrong.exit_code == 2
    assert "entry 'send-letters' slot 2026-03-29T10:00:00+00:00 is not in doubt" in wrong.output
    assert run("ack-in-doubt", *options, "send-letters", "09:00").exit_code == 2
    assert run("ack-in-doubt", *options).exit_code == 2

    done = run("ack-in-doubt", *options, "send-letters", "2026-03-29T09:00:00Z")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Acknowledged 1 slot(s) in doubt:\n")
    assert [d.entry for d in lock.store.doubts(lock.name)] == ["ledger"]
    assert run("ack-in-doubt", *options, "--all").exit_code == 0
    assert lock.store.doubts(lock.name) == []
    assert "in doubt" not in run("status", *options).stdout

    history = json.loads(run("history", "--json", *options).stdout)
    acknowledged = [e for e in history if e["kind"] == "in-doubt"]
    assert [(e["result"], e["detail"]["entry"]) for e in acknowledged] == [
        ("acknowledged", "ledger"),
        ("acknowledged", "send-letters"),
    ]
    assert {(e["actor"], e["host"]) for e in acknowledged} == {tuple(operator())}
    assert run("ack-in-doubt", *options, "--all").output == (
        "Nothing in doubt: nothing acknowledged.\n"
    )
