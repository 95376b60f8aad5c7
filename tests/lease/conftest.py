"""Fixtures of the lease tests: every test that takes ``store_url`` runs once per backend, on
the real servers (the session's moto server and redis-server), with a fresh lock name."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import boto3
import pytest
import redis

from beat_lock.dynamodb import create_table
from beat_lock.identity import Identity
from beat_lock.location import parse_lock_url
from beat_lock.store import LeaseStore
from beat_lock.stores import open_store
from beat_lock.timings import LeaseTimings

BACKENDS = ["dynamodb", "redis"]


@pytest.fixture(scope="module")
def lock_table(moto_server) -> str:
    """A fresh DynamoDB lock table for this test module, made by create_table."""
    table = f"locks-{uuid.uuid4().hex[:10]}"
    assert create_table(table) is True
    return table


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "dynamodb":
        return f"dynamodb://{request.getfixturevalue('lock_table')}?region=eu-west-2"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def lock_name(unique_name: str) -> str:
    return f"lock-{unique_name}"


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., LeaseStore]]:
    """Open stores (each its own client, as two processes would have) on the test's backend."""
    opened: list[LeaseStore] = []

    def make(timings: LeaseTimings | None = None) -> LeaseStore:
        store = open_store(parse_lock_url(store_url), timings)
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
                TableName=table, Key={"pk": {"S": f"lease#{name}"}, "sk": {"S": "lease"}},
                UpdateExpression="SET #f = :v", ExpressionAttributeNames={"#f": field},
                ExpressionAttributeValues={":v": {"S": value}},
            )
    else:
        client = redis.Redis.from_url(store_url)

        def write(name: str, field: str, value: str) -> None:
            client.hset(f"beat_lock:{{{name}}}:lease", field, value)

    yield write
    client.close()
