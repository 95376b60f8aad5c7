"""The SES-receipt handler on the moto server: one Celery task per SNS record on the side's
queue, read and run by a real ``celery worker``; bad records raise after the good ones went."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from beat_handover.routers.errors import RouterConfigError, UnprocessableEvent
from beat_handover.routers.route_format import QueueSide, Route
from beat_handover.routers.ses_receipts import make_handler
from beat_handover.routers.switch import bucket
from tests.routers.conftest import REGION

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queues(sqs, name) -> dict[str, QueueSide]:
    """A paas and an ecs queue of this test."""
    return {
        label: QueueSide(label, sqs.create_queue(QueueName=f"{name}-{label}")["QueueUrl"])
        for label in ("paas", "ecs")
    }


@pytest.fixture
def ses_route(put_route, name, queues):
    def put(percent: str) -> Route:
        return put_route(
            Route(name, "ses_receipts", Decimal(percent), queues["paas"], queues["ecs"])
        )

    return put


@pytest.fixture
def handler_for(route_table, name, queues, clock):
    def build(**config):
        return make_handler(
            {
                "route": name,
                "table": route_table,
                "region": REGION,
                "fallback_side": {"label": "paas", "queue_url": queues["paas"].queue_url},
                **config,
            },
            clock=clock,
            emit=lambda line: None,
        )

    return build


def notification(ses_message_id: str) -> str:
    return json.dumps(
        {
            "notificationType": "Delivery",
            "mail": {"messageId": ses_message_id, "destination": ["someone@example.com"]},
            "delivery": {"recipients": ["someone@example.com"], "smtpResponse": "250 ok"},
        }
    )


def sns_record(ses_message_id: str, *, message: str | None = None) -> dict:
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "Sns": {
            "Type": "Notification",
            "MessageId": f"sns-{ses_message_id}",
            "TopicArn": "arn:aws:sns:eu-west-2:123456789012:ses-results",
            "Message": notification(ses_message_id) if message is None else message,
        },
    }


def drain(sqs, queue: QueueSide) -> list[dict]:
    """Every message on ``queue``, decoded from the kombu SQS envelope."""
    found = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            envelope = json.loads(base64.b64decode(message["Body"]))
            envelope["decoded_body"] = json.loads(base64.b64decode(envelope["body"]))
            found.append(envelope)
            sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])


def ids_on_each_side(name: str, percent: int, count: int) -> dict[str, list[str]]:
    """``count`` SES message ids per side of a route at ``percent``, found by their buckets."""
    sides: dict[str, list[str]] = {"paas": [], "ecs": []}
    i = 0
    while min(len(ids) for ids in sides.values()) < count:
        ses_id = f"0100018f-{i:06d}"
        side = "ecs" if bucket(name, ses_id) < percent * 10_000 else "paas"
        if len(sides[side]) < count:
            sides[side].append(ses_id)
        i += 1
    return sides


def test_each_record_becomes_a_celery_task_on_its_sides_queue(
    name, ses_route, handler_for, sqs, queues
):
    ses_route("50")
    expected = ids_on_each_side(name, 50, 3)
    records = [sns_record(ses_id) for ids in expected.values() for ses_id in ids]
    result = handler_for()({"Records": records}, None)
    assert [entry["side"] for entry in result["queued"]] == ["paas"] * 3 + ["ecs"] * 3
    for label, ids in expected.items():
        tasks = drain(sqs, queues[label])
        assert len(tasks) == 3
        for task in tasks:
            assert task["headers"]["task"] == "process-ses-result"
            assert task["headers"]["lang"] == "py"
            assert task["headers"]["id"] == task["headers"]["root_id"]
            assert task["properties"]["correlation_id"] == task["headers"]["id"]
            assert task["properties"]["body_encoding"] == "base64"
            assert task["properties"]["delivery_info"] == {
                "exchange": "",
                "routing_key": f"{name}-{label}",
            }
            args, kwargs, embed = task["decoded_body"]
            assert len(args) == 1 and set(args[0]) == {"Message"}
            assert kwargs == {} and embed["chain"] is None
            assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
        assert sorted(task["decoded_body"][0][0]["Message"] for task in tasks) == sorted(
            notification(ses_id) for ses_id in ids
        )


def test_a_retried_record_goes_the_same_way_with_the_same_task_id(
    name, ses_route, handler_for, sqs, queues
):
    ses_route("50")
    handler = handler_for(task_name="app.tasks.ses_result")
    first = handler({"Records": [sns_record("abc-1")]}, None)["queued"][0]
    again = handler({"Records": [sns_record("abc-1")]}, None)["queued"][0]
    assert first == again
    tasks = drain(sqs, queues[first["side"]])
    assert [task["headers"]["id"] for task in tasks] == [first["task_id"]] * 2
    assert {task["headers"]["task"] for task in tasks} == {"app.tasks.ses_result"}


def test_a_bad_record_raises_after_the_good_ones_were_queued(
    name, ses_route, handler_for, sqs, queues, caplog
):
    ses_route("0")
    records = [
        sns_record("good-1"),
        sns_record("bad-json", message="{not json"),
        sns_record("good-2"),
        {"EventSource": "aws:s3"},
        sns_record("no-mail", message=json.dumps({"notificationType": "Delivery"})),
    ]
    with pytest.raises(UnprocessableEvent) as caught:
        handler_for()({"Records": records}, None)
    message = str(caught.value)
    assert message.startswith(
        "3 of 5 SNS record(s) were not queued (the other 2 were); Lambda will retry the event: "
        "record 1 (SNS MessageId sns-bad-json): Sns.Message is not JSON ("
    )
    assert "record 3 (no SNS MessageId): not an SNS record (EventSource is not aws:sns)" in message
    assert "record 4 (SNS MessageId sns-no-mail): Sns.Message has no mail.messageId" in message
    assert "record=1 (SNS MessageId sns-bad-json) not queued" in caplog.text
    tasks = drain(sqs, queues["paas"])
    assert sorted(task["decoded_body"][0][0]["Message"] for task in tasks) == sorted(
        [notification("good-1"), notification("good-2")]
    )


def test_without_a_route_item_everything_goes_to_the_fallback_queue(
    handler_for, sqs, queues, caplog
):
    result = handler_for()({"Records": [sns_record(f"m{i}") for i in range(5)]}, None)
    assert {entry["side"] for entry in result["queued"]} == {"paas"}
    assert len(drain(sqs, queues["paas"])) == 5
    assert "NO ROUTE CONFIG HAS EVER BEEN READ" in caplog.text


def test_without_credentials_the_event_fails_saying_what_to_set(
    handler_for, sqs, queues, monkeypatch
):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(UnprocessableEvent) as caught:
        handler_for()({"Records": [sns_record("m1")]}, None)
    assert (
        f"record 0 (SNS MessageId sns-m1): sending to {queues['paas'].queue_url} failed: no AWS "
        "credentials: none of AWS_ACCESS_KEY_ID" in str(caught.value)
    )


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}, ["x"]])
def test_an_event_without_records_is_refused(name, ses_route, handler_for, event):
    ses_route("0")
    with pytest.raises(UnprocessableEvent, match="expected an SNS event with a non-empty Records"):
        handler_for()(event, None)


def test_the_fallback_queue_is_required(route_table, name):
    with pytest.raises(RouterConfigError) as caught:
        make_handler({"route": name, "table": route_table, "region": REGION})
    assert str(caught.value) == (
        "the ses_receipts handler config lacks the required key 'fallback_side'"
    )


@pytest.mark.slow
def test_a_celery_worker_runs_process_ses_result_with_each_original_message(
    name, ses_route, handler_for, queues, tmp_path
):
    ses_route("50")
    expected = ids_on_each_side(name, 50, 2)
    handler = handler_for()
    handler({"Records": [sns_record(ses_id) for ids in expected.values() for ses_id in ids]}, None)
    with pytest.raises(UnprocessableEvent):
        handler({"Records": [sns_record("late-1"), sns_record("x", message="[")]}, None)
    results = tmp_path / "results.jsonl"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.routers.ses_worker_app",
            "worker",
            "-Q",
            f"{name}-paas,{name}-ecs",
            "-P",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env={**os.environ, "SES_RESULT_FILE": str(results)},
        stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    wanted = sorted(
        [notification(i) for ids in expected.values() for i in ids] + [notification("late-1")]
    )
    try:
        deadline = time.monotonic() + 60
        got: list[str] = []
        while time.monotonic() < deadline and len(got) < len(wanted):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.3)
            if results.exists():
                got = [json.loads(line)["Message"] for line in results.read_text().splitlines()]
        time.sleep(1)  # a duplicate delivery would show up in this second
        got = [json.loads(line)["Message"] for line in results.read_text().splitlines()]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert sorted(got) == wanted, (tmp_path / "worker.log").read_text()[-3000:]
