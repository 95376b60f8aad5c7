"""Fixtures shared by every test: a moto server and a throwaway redis-server, both real.

Both are session-scoped and started on free loopback ports. ``AWS_ENDPOINT_URL`` (honoured by
boto3) and fake credentials are put in ``os.environ`` for the whole session, so boto3 clients in
this process and in child processes (celery beat, workers, the CLI) talk to the moto server.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
import redis
from pytest_redis import factories

from tests.servers import MotoServer, start_moto_server

if shutil.which("redis-server") is None:
    raise pytest.UsageError(
        "redis-server is not installed; the tests start their own on a free port. "
        "On Debian/Ubuntu: apt-get install redis-server; on macOS: brew install redis"
    )

redis_server = factories.redis_proc(port=None, save='""')


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    saved = {key: os.environ.get(key) for key in server.env()}
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        saved.setdefault(key, os.environ.pop(key, None))
    os.environ.update(server.env())
    try:
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def redis_url(redis_server) -> Iterator[str]:
    """A URL of the test redis-server's database 0, emptied before each test."""
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
    yield url


@pytest.fixture
def unique_name() -> str:
    """A lock, table or queue name no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"
