"""Fixtures of the lease tests: every test that takes ``store_url`` runs once per backend, on
the real servers (the session's moto server and redis-server), with a fresh lock name.

A module may override ``backend`` to choose its backends: the race tests run DynamoDB on
dynalite (a node DynamoDB with per-item locking), because moto is not concurrency-safe.
dynalite ignores ``ReturnValuesOnConditionCheckFailure``; its stores get the item put back into
a refused write's answer here (:func:`put_back_refused_items`), as DynamoDB answers.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import boto3
import pytest
import redis

from beat_handover.beat_lock import keys
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


def put_back_refused_items(store: DynamoDBStore) -> None:
    """Make a dynalite store's refused conditional writes answer with the item as it is, as
    DynamoDB does with ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` (read just after the
    refusal: the item as it was, unless another write came in between)."""
    client = store.client

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
            context["refused_item_key"] = (params["TableName"], params["Key"])

    def put_back(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        refused = parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        if refused and "Item" not in parsed and "refused_item_key" in context:
            table, key = context["refused_item_key"]
            item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            if item is not None:
                parsed["Item"] = item

    for operation in ("UpdateItem", "PutItem"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", remember)
        client.meta.events.register(f"after-call.dynamodb.{operation}", put_back)


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
            put_back_refused_items(store)
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
                Key={
                    "pk": {"S": keys.partition(keys.LEASE, name)},
                    "sk": {"S": keys.LEASE_SORT_KEY},
                },
                UpdateExpression="SET #f = :v",
                ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues={":v": {"S": value}},
            )
    else:
        client = redis.Redis.from_url(store_url)

        def write(name: str, field: str, value: str) -> None:
            client.hset(keys.redis_key(name, "lease"), field, value)

    yield write
    client.close()


@pytest.fixture
def write_raw_claim_field(
    backend: str, store_url: str
) -> Iterator[Callable[[str, str, str, str], None]]:
    """Write one field of an entry's claim behind the store's back (a text value)."""
    if backend == "dynamodb":
        client = boto3.client("dynamodb")
        table = parse_lock_url(store_url).table

        def write(name: str, entry: str, field: str, value: str) -> None:
            client.update_item(
                TableName=table,
                Key={"pk": {"S": keys.partition(keys.CLAIM, name)}, "sk": {"S": entry}},
                UpdateExpression="SET #f = :v",
                ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues={":v": {"S": value}},
            )
    else:
        client = redis.Redis.from_url(store_url)

        def write(name: str, entry: str, field: str, value: str) -> None:
            claims = keys.redis_key(name, "claims")
            stored = json.loads(client.hget(claims, entry))
            client.hset(claims, entry, json.dumps({**stored, field: value}))

    yield write
    client.close()


@pytest.fixture
def stored_lease_fields(backend: str, store_url: str) -> Iterator[Callable[[str], dict]]:
    """The lease record's fields as stored, read behind the store's back."""
    if backend == "dynamodb":
        client = boto3.client("dynamodb")
        table = parse_lock_url(store_url).table

        def read(name: str) -> dict:
            return client.get_item(
                TableName=table,
                Key={
                    "pk": {"S": keys.partition(keys.LEASE, name)},
                    "sk": {"S": keys.LEASE_SORT_KEY},
                },
                ConsistentRead=True,
            )["Item"]
    else:
        client = redis.Redis.from_url(store_url)

        def read(name: str) -> dict:
            return client.hgetall(keys.redis_key(name, "lease"))

    yield read
    client.close()
