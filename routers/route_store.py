"""Operators' reads and writes of route items and their audit entries in DynamoDB, through boto3,
for ``handover route`` (format: route_format). The handlers read their route item without boto3
(``config.open_switch``), so this module is never imported on their way to the first request.

Every write is one ``TransactWriteItems``: the route item, conditional on the version it was read
at (or on not existing yet), together with its audit entry, so no change goes unrecorded and two
operators changing one route at once cannot overwrite each other unseen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from beat_handover.routers.errors import (
    RouteConflict,
    RouteNotFound,
    RouteStoreMissing,
    RouteStoreUnavailable,
)
from beat_handover.routers.route_format import (
    AUDIT_PREFIX,
    ROUTE_PREFIX,
    ROUTE_SK,
    Rollout,
    Route,
    RouteChange,
    audit_item,
    change_from_item,
    iso_utc,
    route_from_item,
    route_key,
    route_to_item,
)


def dynamodb_client(
    region: str | None,
    *,
    endpoint_url: str | None = None,
    timeout_seconds: float = 5.0,
    attempts: int = 3,
) -> Any:
    """A DynamoDB client whose every attempt gives up after ``timeout_seconds``."""
    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
    )


@contextmanager
def store_errors(table: str, action: str) -> Iterator[None]:
    """Turn botocore errors into RouteStoreMissing / RouteStoreUnavailable naming the table."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            raise RouteStoreMissing(
                f"DynamoDB table {table!r} does not exist (or is in another region); create it "
                "with `handover init` or fix the lock URL's table and ?region="
            ) from None
        raise RouteStoreUnavailable(
            f"DynamoDB could not {action} in table {table!r}: {error.get('Code')}: "
            f"{error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise RouteStoreUnavailable(
            f"DynamoDB could not {action} in table {table!r}: {exc}"
        ) from None


def get_route(client: Any, table: str, name: str) -> Route:
    """The route (strongly consistent read), else RouteNotFound."""
    with store_errors(table, f"read route {name!r}"):
        item = client.get_item(TableName=table, Key=route_key(name), ConsistentRead=True).get(
            "Item"
        )
    if item is None:
        raise RouteNotFound(
            f"there is no route {name!r} in table {table!r}; see `handover route show` for the "
            "routes there are, or create it with `handover route create`"
        )
    return route_from_item(item)


def list_routes(client: Any, table: str) -> list[Route]:
    """Every route in the table, by name. A Scan: it reads the whole table, for operators only."""
    routes = []
    with store_errors(table, "list routes"):
        for page in client.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="sk = :sk AND begins_with(pk, :prefix)",
            ExpressionAttributeValues={":sk": {"S": ROUTE_SK}, ":prefix": {"S": ROUTE_PREFIX}},
        ):
            routes.extend(route_from_item(item) for item in page.get("Items", []))
    return sorted(routes, key=lambda route: route.name)


def create_route(
    client: Any,
    table: str,
    route: Route,
    *,
    reason: str,
    actor: str,
    host: str,
    now: datetime | None = None,
) -> Route:
    """Store a new route (version 1), created by ``actor`` on ``host``, else RouteConflict if
    one of that name exists."""
    now = now or datetime.now(UTC)
    stored = replace(
        route, version=1, updated_at=iso_utc(now), updated_by=f"{actor}@{host}", reason=reason
    )
    change = RouteChange(
        route.name, iso_utc(now), "create", actor, host, None, route.percent, 1, reason
    )
    _write(
        client,
        table,
        stored,
        change,
        now,
        condition="attribute_not_exists(pk)",
        values={},
        conflict=f"route {route.name!r} exists already; change it with `handover route set`",
    )
    return stored


def change_percent(
    client: Any,
    table: str,
    name: str,
    percent: Decimal,
    *,
    action: str,
    reason: str,
    actor: str,
    host: str,
    end_rollout: bool = False,
    now: datetime | None = None,
) -> tuple[Route, Route]:
    """Set a route's percentage, as ``actor`` on ``host`` (with ``end_rollout``, ending any
    rollout under way in the same write); returns (before, after). RouteNotFound,
    RouteConflict."""
    before = get_route(client, table, name)
    after = write_change(
        client,
        table,
        before,
        percent=percent,
        rollout=None if end_rollout else before.rollout,
        action=action,
        reason=reason,
        actor=actor,
        host=host,
        now=now,
    )
    return before, after


def write_change(
    client: Any,
    table: str,
    before: Route,
    *,
    percent: Decimal,
    rollout: Rollout | None,
    action: str,
    reason: str,
    actor: str,
    host: str,
    now: datetime | None = None,
) -> Route:
    """Write route ``before`` with ``percent`` and ``rollout``, only if it is still at the
    version read, together with its audit entry; the route as written. RouteConflict if someone
    else wrote it since ``before`` was read."""
    now = now or datetime.now(UTC)
    after = replace(
        before,
        percent=percent,
        rollout=rollout,
        version=before.version + 1,
        updated_at=iso_utc(now),
        updated_by=f"{actor}@{host}",
        reason=reason,
    )
    change = RouteChange(
        before.name,
        iso_utc(now),
        action,
        actor,
        host,
        before.percent,
        percent,
        after.version,
        reason,
    )
    _write(
        client,
        table,
        after,
        change,
        now,
        condition="version = :version",
        values={":version": {"N": str(before.version)}},
        conflict=f"route {before.name!r} was changed by someone else while we wrote it (we read "
        f"version {before.version}); look with `handover route show {before.name}` and run the "
        "command again",
    )
    return after


def _write(
    client: Any,
    table: str,
    route: Route,
    change: RouteChange,
    now: datetime,
    *,
    condition: str,
    values: dict[str, Any],
    conflict: str,
) -> None:
    put_route: dict[str, Any] = {
        "TableName": table,
        "Item": route_to_item(route),
        "ConditionExpression": condition,
    }
    if values:
        put_route["ExpressionAttributeValues"] = values
    put_audit = {
        "TableName": table,
        "Item": audit_item(change, now),
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    with store_errors(table, f"write route {route.name!r}"):
        try:
            client.transact_write_items(TransactItems=[{"Put": put_route}, {"Put": put_audit}])
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise RouteConflict(conflict) from None
            raise


def history(client: Any, table: str, name: str, *, limit: int = 20) -> list[RouteChange]:
    """The newest ``limit`` audit entries of a route, newest first."""
    with store_errors(table, f"read the history of route {name!r}"):
        items = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": AUDIT_PREFIX + name}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        ).get("Items", [])
    return [change_from_item(item) for item in items]
