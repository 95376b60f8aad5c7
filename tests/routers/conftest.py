"""Fixtures of the router tests: a route table on the moto server, routes in it, a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from beat_handover.routers.route_format import Route, side_from_url
from beat_handover.routers.route_store import create_route, dynamodb_client

REGION = "eu-west-2"
BY = {"actor": "tester", "host": "tests"}  # who the route changes made here are recorded as
OLD_ORIGIN = "https://paas.example.com"
NEW_ORIGIN = "https://ecs.example.com:8443/app"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def dynamodb(moto_server) -> Any:
    return dynamodb_client(REGION)


@pytest.fixture(scope="session")
def sqs(moto_server) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture(scope="session")
def route_table(moto_server, dynamodb) -> str:
    """One table with the toolkit's key schema (pk, sk) on the moto server, shared by the router
    tests (each test uses a route name of its own: see ``name``)."""
    table = f"routes{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


@pytest.fixture
def name(unique_name) -> str:
    """A route name no other test uses."""
    return unique_name


def origin_route(name: str, percent: str = "0", **extra: Any) -> Route:
    """A cloudfront route from paas.example.com (old) to ecs.example.com:8443/app (new)."""
    return Route(
        name,
        "cloudfront",
        Decimal(percent),
        side_from_url("cloudfront", "paas", OLD_ORIGIN, where="old", **extra),
        side_from_url("cloudfront", "ecs", NEW_ORIGIN, where="new", **extra),
    )


@pytest.fixture
def put_route(dynamodb, route_table) -> Callable[[Route], Route]:
    """Store a new route in the test table."""

    def put(route: Route) -> Route:
        return create_route(dynamodb, route_table, route, reason="test", **BY)

    return put
