"""Fixtures of the router tests: a route table on the moto server, routes in it, a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest

from beat_handover.beat_lock.dynamodb import create_table
from beat_handover.handover.cli import main
from beat_handover.handover.connection import Connection
from beat_handover.handover.routes import Routes
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
def route_table(moto_server) -> str:
    """One table with the toolkit's key schema (pk, sk) on the moto server, shared by the router
    tests (each test uses a route name of its own: see ``name``)."""
    table = f"routes{uuid.uuid4().hex[:8]}"
    create_table(table, REGION)
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


@pytest.fixture
def handover(route_table, capsys):
    """Run ``handover ARGS --lock-url <test table>``; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as caught:
            main([*args, "--lock-url", f"dynamodb://{route_table}?region={REGION}"])
        out, err = capsys.readouterr()
        return caught.value.code, out, err

    return run


@pytest.fixture
def routes(route_table) -> Routes:
    """The operator's view of the test table (``beat_handover.handover.routes``)."""
    return Routes(Connection(lock_url=f"dynamodb://{route_table}?region={REGION}"))
