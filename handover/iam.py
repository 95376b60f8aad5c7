"""Least-privilege IAM policies for the three principals that touch the lock table.

Each policy names the one table and, through ``dynamodb:LeadingKeys``, only the partition keys
that principal works on (see the table layout: ``lease#NAME``, ``member#NAME``, ``audit#NAME``,
``route#ROUTE``, ``route-audit#ROUTE``), so a beat cannot rewrite routes and a router Lambda can
only read them.
"""

from __future__ import annotations

from typing import Any

BEAT_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)
OPERATOR_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
)
OPERATOR_TABLE_ACTIONS = (
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:UpdateTimeToLive",
)
ROUTER_ITEM_ACTIONS = ("dynamodb:GetItem",)


def table_arn(table: str, *, region: str, account_id: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{table}"


def _item_statement(sid: str, actions: tuple[str, ...], arn: str, keys: list[str]) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": arn,
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": keys}},
    }


def _policy(*statements: dict) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def policies(table: str, *, region: str, account_id: str, lock_name: str) -> dict[str, Any]:
    """The policy documents of a beat, an operator and a router Lambda, keyed by principal."""
    arn = table_arn(table, region=region, account_id=account_id)
    lock_keys = [f"lease#{lock_name}", f"member#{lock_name}", f"audit#{lock_name}"]
    route_keys = ["route#*", "route-audit#*"]
    return {
        "beat": _policy(
            _item_statement("BeatLockItems", BEAT_ITEM_ACTIONS, arn, lock_keys),
            {"Sid": "BeatLockTable", "Effect": "Allow", "Action": ["dynamodb:DescribeTable"],
             "Resource": arn},
        ),
        "operator": _policy(
            _item_statement("OperatorLockItems", OPERATOR_ITEM_ACTIONS, arn, lock_keys),
            _item_statement("OperatorRouteItems", OPERATOR_ITEM_ACTIONS, arn, route_keys),
            {"Sid": "OperatorTable", "Effect": "Allow", "Action": list(OPERATOR_TABLE_ACTIONS),
             "Resource": arn},
        ),
        "router": _policy(
            _item_statement("RouterReadRoutes", ROUTER_ITEM_ACTIONS, arn, ["route#*"]),
        ),
    }
