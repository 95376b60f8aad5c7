"""The policies ``handover init`` prints allow every request each principal really makes.

Each principal's requests are recorded (a botocore hook on the client) while the real code does
its job against the moto server: a beat leading, fencing, claiming, renewing, releasing and
falling back; an operator's status, handover and set-up; a worker's guard. Each request, as an
IAM action on a partition key, must be allowed by that principal's policy document.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from typing import Any

import pytest

from beat_handover.beat_lock.dynamodb import DynamoDBStore, create_table
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import AuditEvent
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.handover.iam import policies
from tests.lease.doubles import FakeClock

pytestmark = pytest.mark.integration

TIMINGS = LeaseTimings()
SLOT = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)


class Recorder:
    """The (IAM action, partition key) of every request a store's client sends."""

    def __init__(self, store: DynamoDBStore) -> None:
        self.requests: set[tuple[str, str | None]] = set()
        store.client.meta.events.register("provide-client-params.dynamodb.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        pk = (params.get("Key") or params.get("Item") or {}).get("pk", {}).get("S")
        if model.name == "Query":
            pk = params["ExpressionAttributeValues"][":pk"]["S"]
        self.requests.add((f"dynamodb:{model.name}", pk))


def allowed(document: dict[str, Any], action: str, pk: str | None) -> bool:
    for statement in document["Statement"]:
        if action not in statement["Action"]:
            continue
        condition = statement.get("Condition")
        if condition is None:
            return True
        patterns = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        if pk is not None and any(fnmatch.fnmatchcase(pk, p) for p in patterns):
            return True
    return False


@pytest.fixture
def table(moto_server, unique_name) -> str:
    return f"iam-{unique_name}"


def recorded_store(table: str) -> tuple[DynamoDBStore, Recorder]:
    store = DynamoDBStore(parse_lock_url(f"dynamodb://{table}?region=eu-west-2"), TIMINGS)
    return store, Recorder(store)


def denied(principal: str, recorder: Recorder, table: str) -> list[tuple[str, str | None]]:
    document = policies(table, region="eu-west-2", account_id="123456789012", lock_name="beat")[
        principal
    ]
    return sorted(r for r in recorder.requests if not allowed(document, *r))


def test_the_beat_policy_allows_everything_a_beat_does(table):
    create_table(table)
    operator, _ = recorded_store(table)
    beat, recorder = recorded_store(table)
    clock = FakeClock()
    beat.ping()
    lease = Lease(beat, "beat", Identity.new("paas"), TIMINGS, clock=clock)
    lease.step()  # reads the lease (a standby's poll), acquires
    lease.step()  # renews, heartbeats
    assert lease.fence(["letters"], everything=True) == {}
    assert lease.claim("letters", SLOT).claimed
    beat.read_claim("beat", "letters")  # a claim whose answer was lost, after the safe time
    lease.release()
    # A beat that falls back from a pinned environment nobody renews, and says so.
    operator.pin("beat", "ecs", expected_token=None, new_version="p1", end_tenure=True)
    fallback = Lease(beat, "beat", Identity.new("paas"), TIMINGS, clock=clock)
    fallback.step()
    clock.advance(TIMINGS.fallback_seconds)
    fallback.step()
    assert fallback.token is not None
    assert operator.events("beat")[0].kind == "fallback"
    assert {"dynamodb:Query", "dynamodb:PutItem"} <= {action for action, _ in recorder.requests}
    assert denied("beat", recorder, table) == []


def test_the_operator_policy_allows_status_handover_and_set_up(table):
    operator, recorder = recorded_store(table)
    create_table(table)  # its own client: record the set-up calls through ours too
    operator.table_status()
    beat, _ = recorded_store(table)
    paas = Identity.new("paas")
    token = beat.acquire("beat", paas, expected_version=None, new_version="v1")
    beat.fence("beat", ["letters"], identity=paas, token=token, everything=True)
    operator.ping()
    operator.read("beat")
    operator.participants("beat")
    operator.events("beat")
    operator.last_claims("beat")
    assert operator.lock_names() == ["beat"]
    operator.announce("beat", "ecs", expected_token=token)
    operator.pin("beat", "ecs", expected_token=token, new_version="p1", end_tenure=True)
    operator.record_event(
        "beat", AuditEvent(SLOT, "handover", "alice", "laptop", "confirmed", {"to": "ecs"})
    )
    assert ("dynamodb:Query", "claim#beat") in recorder.requests
    assert denied("operator", recorder, table) == []


def test_the_worker_policy_allows_the_guard(table):
    create_table(table)
    worker, recorder = recorded_store(table)
    assert worker.mark_run("beat", f"letters#{SLOT.isoformat()}", ttl_seconds=60)
    assert denied("worker", recorder, table) == []


def allowed_on(document: dict[str, Any], action: str, resource: str) -> bool:
    return any(
        action in statement["Action"] and fnmatch.fnmatchcase(resource, statement["Resource"])
        for statement in document["Statement"]
    )


def test_the_operator_policy_allows_watching_alarms_and_counting_queues(moto_server, unique_name):
    """``route rollout`` reads alarms (in us-east-1 for CloudFront, wherever the table is) and
    ``route drain`` reads each side's queue counts: the requests they send, as IAM sees them."""
    import boto3

    from beat_handover.handover.alarms import Alarms
    from beat_handover.handover.drain import Queues
    from beat_handover.routers.route_format import QueueSide

    account = "123456789012"
    document = policies("t", region="eu-west-2", account_id=account, lock_name="beat")["operator"]
    requests: list[tuple[str, str]] = []

    def record(service: str, region: str):
        def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
            if service == "cloudwatch":
                for name in params.get("AlarmNames", []):
                    requests.append(
                        (
                            f"cloudwatch:{model.name}",
                            f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
                        )
                    )
            else:
                queue = params["QueueUrl"].rsplit("/", 1)[-1]
                requests.append((f"sqs:{model.name}", f"arn:aws:sqs:{region}:{account}:{queue}"))

        return hook

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.*", record("cloudwatch", "us-east-1")
    )
    alarm = f"web-5xx-{unique_name}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="5xxErrorRate",
        Namespace="AWS/CloudFront",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    requests.clear()
    assert [s.name for s in Alarms((alarm,), region="us-east-1", client=cloudwatch).states()] == [
        alarm
    ]

    sqs = boto3.client("sqs", region_name="eu-west-2")
    sqs.meta.events.register(
        "provide-client-params.sqs.GetQueueAttributes", record("sqs", "eu-west-2")
    )
    url = sqs.create_queue(QueueName=f"paas-{unique_name}")["QueueUrl"]
    assert Queues("eu-west-2", client=sqs).depth(QueueSide("paas", url)).empty

    assert {action for action, _ in requests} == {
        "cloudwatch:DescribeAlarms",
        "sqs:GetQueueAttributes",
    }
    assert [r for r in requests if not allowed_on(document, *r)] == []
