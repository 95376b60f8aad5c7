"""``handover route drain`` against the moto server's SQS: each side's queue counted (waiting, in
flight), and the old side drained only once the route is at 100 % past the cache TTL and its
queue is empty; ``--wait`` waits for that, within its timeout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from beat_handover.handover.drain import Queues, drain_state, wait_for_drain
from beat_handover.routers.route_format import Route, side_from_url
from beat_handover.routers.route_store import change_percent
from tests.routers.conftest import BY, REGION, origin_route

pytestmark = pytest.mark.integration


@pytest.fixture
def queues(sqs, unique_name):
    return {
        label: sqs.create_queue(QueueName=f"{unique_name}-{label}")["QueueUrl"]
        for label in ("paas", "ecs")
    }


@pytest.fixture
def mail(put_route, name, queues):
    sides = [side_from_url("ses_receipts", label, queues[label], where=label) for label in queues]
    put_route(Route(name, "ses_receipts", Decimal(0), *sides, cache_ttl_seconds=1))
    return name


@pytest.fixture
def at_100(dynamodb, route_table):
    """Set a route to 100 % as of five minutes ago, so its cache TTL has long passed."""

    def set_route(name: str) -> None:
        earlier = datetime.now(UTC) - timedelta(minutes=5)
        change_percent(
            dynamodb, route_table, name, Decimal(100), action="set", reason="", now=earlier, **BY
        )

    return set_route


class Waits:
    def __init__(self) -> None:
        self.labels: list[str] = []

    def progress(self, label: str, elapsed_seconds: float) -> None:
        self.labels.append(label)

    def end_wait(self) -> None:
        pass


def test_the_old_side_drains_once_at_100_percent_past_the_ttl_and_empty(
    handover, routes, mail, queues, sqs, at_100
):
    sqs.send_message(QueueUrl=queues["paas"], MessageBody="receipt-1")
    sqs.send_message(QueueUrl=queues["paas"], MessageBody="receipt-2")
    sqs.send_message(QueueUrl=queues["ecs"], MessageBody="receipt-3")
    code, out, _ = handover("route", "drain", mail)
    assert code == 3
    assert out.splitlines()[1:] == [
        f"  old  paas     queue {mail}-paas: 2 waiting, 0 in flight, 0 delayed",
        f"  new  ecs      queue {mail}-ecs: 1 waiting, 0 in flight, 0 delayed",
        "not drained: the route sends 100% of receipts to paas still; it drains only once at 100%",
    ]

    at_100(mail)
    state = drain_state(routes, mail, Queues(REGION))
    just_after = drain_state(
        routes, mail, Queues(REGION), now=state.full_since + timedelta(seconds=0.5)
    )
    assert not just_after.drained
    assert "handlers that cached the route before may send to paas until" in just_after.verdict

    received = sqs.receive_message(QueueUrl=queues["paas"], MaxNumberOfMessages=1)["Messages"]
    code, out, _ = handover("route", "drain", mail, "--json")
    document = json.loads(out)
    assert code == 3
    assert (document["old"]["waiting"], document["old"]["in_flight"]) == (1, 1)
    assert document["verdict"] == "paas's queue still holds 1 waiting, 1 in flight, 0 delayed"

    sqs.delete_message(QueueUrl=queues["paas"], ReceiptHandle=received[0]["ReceiptHandle"])
    (last,) = sqs.receive_message(QueueUrl=queues["paas"])["Messages"]
    sqs.delete_message(QueueUrl=queues["paas"], ReceiptHandle=last["ReceiptHandle"])
    code, out, _ = handover("route", "drain", mail)
    assert code == 0
    assert out.splitlines()[-1] == (
        "drained: paas's queue is empty and gets no new receipts; its workers may be switched off"
    )


def test_wait_counts_until_drained_and_gives_up_at_its_timeout(
    handover, routes, mail, queues, sqs, at_100
):
    at_100(mail)
    sqs.send_message(QueueUrl=queues["paas"], MessageBody="receipt-1")
    waits = Waits()

    def sleep(_seconds: float) -> None:
        # The old side's workers take the receipt on the second look.
        if len(waits.labels) == 2:
            (message,) = sqs.receive_message(QueueUrl=queues["paas"])["Messages"]
            sqs.delete_message(QueueUrl=queues["paas"], ReceiptHandle=message["ReceiptHandle"])

    state = wait_for_drain(
        routes,
        mail,
        Queues(REGION),
        timeout_seconds=60,
        every_seconds=0.01,
        progress=waits,
        sleep=sleep,
    )
    assert state.drained
    assert waits.labels[-1] == "waiting for paas to drain (1 waiting, 0 in flight, 0 delayed)"

    sqs.send_message(QueueUrl=queues["paas"], MessageBody="receipt-2")
    code, out, err = handover(
        "route", "drain", mail, "--wait", "--timeout", "1s", "--interval", "0.2s"
    )
    assert (code, err) == (3, "")
    assert out.splitlines()[-2:] == [
        "not drained: paas's queue still holds 1 waiting, 0 in flight, 0 delayed",
        "not drained within 1s",
    ]


def test_drain_is_for_ses_receipts_routes(handover, put_route, name):
    put_route(origin_route(name))
    code, out, err = handover("route", "drain", name)
    assert (code, out) == (2, "")
    assert err == (
        "Error: route drain is for ses_receipts routes, whose sides are SQS queues; "
        f"{name!r} is a cloudfront route\n"
    )
