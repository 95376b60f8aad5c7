"""Marks of runs already executed, for the worker-side guard: one set-if-absent item per run.

They live in the lease store the lock URL names, beside the lease, and expire by themselves:
DynamoDB item ``pk=run#LOCK``, ``sk=ENTRY#SLOT`` with TTL attribute ``expires_at``; Redis key
``beat_lock:{LOCK}:run:{ENTRY}#{SLOT}`` with an expiry.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from datetime import datetime

from beat_lock.errors import StoreMissing, StoreUnavailable
from beat_lock.location import LockLocation
from beat_lock.timings import LeaseTimings
from scheduler.headers import format_slot


class RunMarks(ABC):
    """Remembers which (entry, slot) runs of one lock have started executing."""

    def __init__(self, name: str, ttl_seconds: float) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds

    @abstractmethod
    def mark(self, entry: str, slot: datetime) -> bool:
        """Record that this run starts now; False if it was recorded before. Raises
        StoreUnavailable (the caller must not run it unmarked) or StoreMissing."""

    def close(self) -> None:  # noqa: B027 - backends without connections need not override
        """Release connections."""


class DynamoDBRunMarks(RunMarks):
    def __init__(self, location: LockLocation, name: str, ttl_seconds: float,
                 timings: LeaseTimings) -> None:
        import boto3
        from botocore.config import Config

        super().__init__(name, ttl_seconds)
        self.table = location.table
        timeout = timings.request_timeout_seconds
        self.client = boto3.client(
            "dynamodb", region_name=location.region,
            config=Config(connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 2, "mode": "standard"}),
        )

    def mark(self, entry: str, slot: datetime) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        expires_at = math.ceil(time.time() + self.ttl_seconds)
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"run#{self.name}"},
                    "sk": {"S": f"{entry}#{format_slot(slot)}"},
                    "expires_at": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                return False
            if code == "ResourceNotFoundException":
                raise StoreMissing(
                    f"DynamoDB table {self.table!r} does not exist; create it with "
                    "`handover init`"
                ) from None
            raise StoreUnavailable(f"DynamoDB put_item on {self.table!r} failed: {code}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB table {self.table!r} not reachable: {exc}") from exc
        return True

    def close(self) -> None:
        self.client.close()


class RedisRunMarks(RunMarks):
    def __init__(self, location: LockLocation, name: str, ttl_seconds: float,
                 timings: LeaseTimings) -> None:
        import redis

        super().__init__(name, ttl_seconds)
        timeout = timings.request_timeout_seconds
        self.client = redis.Redis.from_url(
            location.url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def mark(self, entry: str, slot: datetime) -> bool:
        import redis

        key = f"beat_lock:{{{self.name}}}:run:{entry}#{format_slot(slot)}"
        try:
            return bool(self.client.set(key, b"1", nx=True, ex=math.ceil(self.ttl_seconds)))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"redis not reachable for run marks: {exc}") from exc

    def close(self) -> None:
        self.client.close()


def open_run_marks(location: LockLocation, name: str, ttl_seconds: float,
                   timings: LeaseTimings) -> RunMarks:
    """Run marks in the store ``location`` names (backends imported lazily, as open_store)."""
    if location.backend == "dynamodb":
        return DynamoDBRunMarks(location, name, ttl_seconds, timings)
    return RedisRunMarks(location, name, ttl_seconds, timings)
