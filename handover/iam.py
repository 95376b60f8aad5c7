"""Least-privilege IAM policies for the principals that touch the lock table.

Each policy names the one table and, through ``dynamodb:LeadingKeys``, only the partition keys
that principal works on (the table layout is in :mod:`beat_handover.beat_lock.keys` and
:mod:`beat_handover.routers.route_format`), so a beat cannot rewrite routes, a worker can only
mark the runs it starts, and a router Lambda can only read routes. Beside the table, the
operator may read CloudWatch alarm states (``route rollout``) and SQS queue counts (``route
drain``), which nothing in the table names in advance.
"""

from __future__ import annotations

from typing import Any

from beat_handover.beat_lock import keys
from beat_handover.routers.route_format import AUDIT_PREFIX as ROUTE_AUDIT_PREFIX
from beat_handover.routers.route_format import ROUTE_PREFIX

# A beat reads the lease, writes it and its heartbeat with UpdateItem, and deletes its
# heartbeat on a clean stop; it never lists members.
BEAT_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
# A new leader lists the lock's claim items (Query) to fence them; each claim is an UpdateItem.
BEAT_CLAIM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
# A beat that falls back to its environment (the pinned one went silent) writes that to the
# lock's history.
BEAT_AUDIT_ACTIONS = ("dynamodb:PutItem",)
OPERATOR_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
# Scan lists every route (`handover route show` without a name); a scan has no partition key,
# so it cannot be narrowed by LeadingKeys and is granted on the table, to operators only.
OPERATOR_TABLE_ACTIONS = (
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:Scan",
)
# handover route rollout watches alarms; handover route drain counts each side's queue.
OPERATOR_ALARM_ACTIONS = ("cloudwatch:DescribeAlarms",)
OPERATOR_QUEUE_ACTIONS = ("sqs:GetQueueAttributes",)
ROUTER_ITEM_ACTIONS = ("dynamodb:GetItem",)
# Workers whose tasks use the once-per-slot guard write one set-if-absent mark per run.
WORKER_ITEM_ACTIONS = ("dynamodb:PutItem",)


def table_arn(table: str, *, region: str, account_id: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{table}"


def _item_statement(sid: str, actions: tuple[str, ...], arn: str, leading_keys: list[str]) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": arn,
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": leading_keys}},
    }


def _policy(*statements: dict) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def policies(table: str, *, region: str, account_id: str, lock_name: str) -> dict[str, Any]:
    """The policy documents of a beat, an operator, a worker (once-per-slot guard) and a router
    Lambda, keyed by principal."""
    arn = table_arn(table, region=region, account_id=account_id)

    def key(prefix: str) -> str:
        return keys.partition(prefix, lock_name)

    beat_keys = [key(keys.LEASE), key(keys.MEMBER)]
    lock_keys = [*beat_keys, key(keys.CLAIM), key(keys.AUDIT)]
    route_keys = [f"{ROUTE_PREFIX}*", f"{ROUTE_AUDIT_PREFIX}*"]
    return {
        "beat": _policy(
            _item_statement("BeatLockItems", BEAT_ITEM_ACTIONS, arn, beat_keys),
            _item_statement("BeatClaimItems", BEAT_CLAIM_ACTIONS, arn, [key(keys.CLAIM)]),
            _item_statement("BeatAuditEvents", BEAT_AUDIT_ACTIONS, arn, [key(keys.AUDIT)]),
            {
                "Sid": "BeatLockTable",
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable"],
                "Resource": arn,
            },
        ),
        "operator": _policy(
            _item_statement("OperatorLockItems", OPERATOR_ITEM_ACTIONS, arn, lock_keys),
            _item_statement("OperatorRouteItems", OPERATOR_ITEM_ACTIONS, arn, route_keys),
            {
                "Sid": "OperatorTable",
                "Effect": "Allow",
                "Action": list(OPERATOR_TABLE_ACTIONS),
                "Resource": arn,
            },
            # Any region: CloudFront's alarms live in us-east-1 whatever the table's region.
            {
                "Sid": "OperatorRolloutAlarms",
                "Effect": "Allow",
                "Action": list(OPERATOR_ALARM_ACTIONS),
                "Resource": f"arn:aws:cloudwatch:*:{account_id}:alarm:*",
            },
            # The routes name their queues after `init`; reading counts reveals no message.
            {
                "Sid": "OperatorDrainQueues",
                "Effect": "Allow",
                "Action": list(OPERATOR_QUEUE_ACTIONS),
                "Resource": f"arn:aws:sqs:*:{account_id}:*",
            },
        ),
        "worker": _policy(
            _item_statement("WorkerRunMarks", WORKER_ITEM_ACTIONS, arn, [key(keys.RUN)]),
        ),
        "router": _policy(
            _item_statement("RouterReadRoutes", ROUTER_ITEM_ACTIONS, arn, [f"{ROUTE_PREFIX}*"]),
        ),
    }
