"""Fixtures of the lease tests: every test that takes ``store_url`` runs once per backend, on
the real servers (the session's moto server and redis-server), with a fresh lock name.

A module may override ``backend`` to choose its backends: the race tests run DynamoDB on
dynalite (a node DynamoDB with per-item locking), because moto is not concurrency-safe.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import boto3
import pytest
import redis

from beat_handover.beat_lock.dynamodb import KEY_SCHEMA, DynamoDBStore, create_table
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from tests.servers import DynaliteServer, dynalite_missing, start_dynalite

BACKENDS = ["dynamodb", "redis"]


@pytest.fixture(scope="module")
def lock_table(moto_server) -> str:
    """A fresh DynamoDB lock table for this test module, made by create_table."""
    table = f"locks-{uuid.uuid4().hex[:10]}"
    assert create_table(table) is True
    return table


@pytest.fixture(scope="session")
def dynalite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynaliteServer]:
    missing = dynalite_missing()
    if missing is not None:
        pytest.skip(f"the DynamoDB race tests need dynalite: {missing}")
    server = start_dynalite(tmp_path_factory.mktemp("dynalite"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dynalite_table(dynalite_server: DynaliteServer, moto_server) -> str:
    """A fresh lock table in dynalite (moto_server: for the fake credentials it sets). Not by
    create_table: dynalite has no UpdateTimeToLive, and heartbeat expiry is checked on read."""
    table = f"locks-{uuid.uuid4().hex[:10]}"
    boto3.client("dynamodb", endpoint_url=dynalite_server.url).create_table(
        TableName=table,
        KeySchema=KEY_SCHEMA,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": key["AttributeName"], "AttributeType": "S"} for key in KEY_SCHEMA
        ],
    )
    return table


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "dynamodb":
        return f"dynamodb://{request.getfixturevalue('lock_table')}?region=eu-west-2"
    if backend == "dynalite":
        return f"dynamodb://{request.getfixturevalue('dynalite_table')}?region=eu-west-2"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def lock_name(unique_name: str) -> str:
    return f"lock-{unique_name}"


@pytest.fixture
def make_store(
    backend: str, store_url: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., LeaseStore]]:
    """Open stores (each its own client, as two processes would have) on the test's backend."""
    opened: list[LeaseStore] = []
    location = parse_lock_url(store_url)

    def make(timings: LeaseTimings | None = None) -> LeaseStore:
        if backend == "dynalite":
            endpoint = request.getfixturevalue("dynalite_server").url
            store = DynamoDBStore(location, timings or LeaseTimings(), endpoint_url=endpoint)
        else:
            store = open_store(location, timings)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., LeaseStore]) -> LeaseStore:
    return make_store()


@pytest.fixture
def paas() -> Identity:
    return Identity.new("paas")


@pytest.fixture
def ecs() -> Identity:
    return Identity.new("ecs")


@pytest.fixture
def pause_server(
    backend: str, request: pytest.FixtureRequest
) -> Callable[[], AbstractContextManager]:
    """A context manager that freezes the test's store server (SIGSTOP: connections hang,
    state is kept) and thaws it on exit."""
    if backend == "dynamodb":
        server = request.getfixturevalue("moto_server")
        stop, cont = server.pause, server.resume
    else:
        pid = request.getfixturevalue("redis_server").process.pid

        def stop() -> None:
            os.kill(pid, signal.SIGSTOP)

        def cont() -> None:
            os.kill(pid, signal.SIGCONT)

    @contextmanager
    def paused() -> Iterator[None]:
        stop()
        try:
            yield
        finally:
            cont()

    return paused


@pytest.fixture
def write_raw_field(backend: str, store_url: str) -> Iterator[Callable[[str, str, str], None]]:
    """Write one field of a lease record behind the store's back, as a careless hand edit
    would (a text value, in DynamoDB a string attribute)."""
    if backend == "dynamodb":
        client = boto3.client("dynamodb")
        table = parse_lock_url(store_url).table

        def write(name: str, field: str, value: str) -> None:
            client.update_item(
                TableName=table,
                Key={"pk": {"S": f"lease#{name}"}, "sk": {"S": "lease"}},
                UpdateExpression="SET #f = :v",
                ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues={":v": {"S": value}},
            )
    else:
        client = redis.Redis.from_url(store_url)

        def write(name: str, field: str, value: str) -> None:
            client.hset(f"beat_lock:{{{name}}}:lease", field, value)

    yield write
    client.close()
