"""The DynamoDB backend: one table, every write one conditional request on one item.

Lease of lock NAME: pk=``lease#NAME``, sk=``lease`` (never deleted, no TTL), fields as in
:mod:`beat_handover.beat_lock.layout`. A slot claim is one conditional ``UpdateItem`` on that item,
which is atomic on every DynamoDB implementation and costs one write unit per KB of the item.
Heartbeats (pk=``member#NAME``) and audit events (pk=``audit#NAME``) carry a TTL in ``expires_at``.
Every read that a decision rests on is strongly consistent.

A write whose condition failed returns the item as it was (``ALL_OLD``), so the store tells in
the same request whether the failure was our own earlier attempt (a botocore retry after a lost
answer: same ``version`` or ``claim_id``), a lost lease or a slot already claimed.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreError,
    StoreMissing,
    StoreUnavailable,
)
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import (
    claim_result,
    event_fields,
    event_from_fields,
    event_key,
    now_iso,
    participant_fields,
    participants_from_rows,
    record_from_fields,
    slot_millis,
)
from beat_handover.beat_lock.location import LockLocation, parse_lock_url
from beat_handover.beat_lock.record import AuditEvent, ClaimResult, LeaseRecord, Participant
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.beat_lock.unreachable import unreachable

AUDIT_TTL = timedelta(days=400)
PIN_ATTEMPTS = 5
TABLE_ACTIVE_SECONDS = 120
KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
# Error codes after which asking again later can succeed (botocore's own retry list).
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
# Placeholders for every field name: several (token, version, pin) are reserved words.
NAMES = {
    "#token": "token",
    "#version": "version",
    "#he": "holder_env",
    "#hi": "holder_id",
    "#pin": "pin",
    "#ra": "renewed_at",
    "#ts": "tenure_started_at",
    "#te": "tenure_ended_at",
    "#rn": "renewals",
    "#ht": "handover_to",
    "#ha": "handover_announced_at",
}
PIN_ALLOWS = "(attribute_not_exists(#pin) OR #pin = :env)"
HOLDS = "#hi = :id AND #he = :env AND #token = :token"


def client_config(timings: LeaseTimings) -> Config:
    """Timeouts and retries sized so one request, retries included, ends within
    ``timings.request_timeout_seconds`` (botocore's 60 s default would eat the safe time).
    Standard retry mode sleeps up to 1 s before a retry, so only a budget of 3 s or more
    affords a second attempt."""
    budget = timings.request_timeout_seconds
    attempts = 2 if budget >= 3 else 1
    per_attempt = (budget - (attempts - 1)) / attempts
    return Config(
        connect_timeout=per_attempt,
        read_timeout=per_attempt,
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )


_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def make_client(region: str | None, timings: LeaseTimings, endpoint_url: str | None = None) -> Any:
    """A DynamoDB client of this process's one boto3 session: a session reads every service
    model from disk (a third of a second); the clients made from it are thread-safe.
    ``endpoint_url`` None: AWS, or what AWS_ENDPOINT_URL(_DYNAMODB) says."""
    global _session
    try:
        with _session_lock:
            if _session is None:
                _session = boto3.session.Session()
            return _session.client(
                "dynamodb",
                region_name=region,
                endpoint_url=endpoint_url,
                config=client_config(timings),
            )
    except NoRegionError:
        raise ConfigError(
            "no AWS region for the DynamoDB lock table: add ?region=REGION to the lock URL "
            "(dynamodb://TABLE?region=eu-west-2) or set AWS_REGION"
        ) from None


def create_table(table: str, region: str | None = None, *, endpoint_url: str | None = None) -> bool:
    """Create the lock table (on-demand billing, TTL on ``expires_at``) if it does not exist.
    Returns True if this call created it. Safe to run any number of times."""
    query = f"?region={region}" if region is not None else ""
    store = DynamoDBStore(
        parse_lock_url(f"dynamodb://{table}{query}"), LeaseTimings(), endpoint_url=endpoint_url
    )
    call = store._call
    created = True
    try:
        call(
            "create_table",
            expect=("ResourceInUseException",),
            TableName=table,
            KeySchema=KEY_SCHEMA,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
    except _Rejected:
        created = False
    deadline = time.monotonic() + TABLE_ACTIVE_SECONDS
    while store.table_status() != "ACTIVE":
        if time.monotonic() > deadline:
            raise StoreUnavailable(
                f"DynamoDB table {table!r} did not become ACTIVE within {TABLE_ACTIVE_SECONDS}s; "
                "run the command again later"
            )
        time.sleep(1)
    ttl = call("describe_time_to_live", TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        call(
            "update_time_to_live",
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    store.close()
    return created


class _Rejected(Exception):
    """A request DynamoDB answered with an error the caller may expect (a failed condition)."""

    def __init__(self, code: str, response: Mapping[str, Any], table: str) -> None:
        super().__init__(code)
        self.code = code
        self.response = response
        self.table = table

    def as_store_error(self) -> StoreError:
        message = self.response.get("Error", {}).get("Message", "")
        return StoreError(
            f"DynamoDB table {self.table!r} refused the request: {self.code} ({message})"
        )


class _Caller:
    """Calls the client, mapping botocore's errors onto the toolkit's."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def __call__(
        self, operation: str, *, expect: tuple[str, ...] = (), **kwargs: Any
    ) -> dict[str, Any]:
        """Call ``operation``; error codes in ``expect`` raise _Rejected for the caller."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "ResourceNotFoundException":
                raise StoreMissing(
                    f"DynamoDB table {self.table!r} does not exist in region "
                    f"{self.client.meta.region_name}: create it with `handover init` "
                    "(beat_handover.beat_lock.dynamodb.create_table), or fix the table in "
                    "beat_lock_url"
                ) from None
            if code in RETRYABLE_CODES or status >= 500:
                raise StoreUnavailable(
                    f"DynamoDB table {self.table!r} is unavailable: {code} (HTTP {status}); "
                    "retrying later can help"
                ) from None
            rejected = _Rejected(code, exc.response, self.table)
            if code in expect:
                raise rejected from None
            raise rejected.as_store_error() from None
        except NoCredentialsError:
            raise ConfigError(
                "no AWS credentials found for the DynamoDB lock table: give this process a "
                "role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            where = f"DynamoDB at {self.client.meta.endpoint_url}"
            names = "the region in beat_lock_url or AWS_REGION, and AWS_ENDPOINT_URL if set"
            raise StoreUnavailable(unreachable(where, exc, names=names)) from None
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB request {operation} failed: {exc}") from None


def _text_fields(item: Mapping[str, Any], what: str) -> dict[str, str]:
    """A DynamoDB item as flat text fields (only S and N are ever written)."""
    fields = {}
    for key, value in item.items():
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("S", "N"):
            raise CorruptRecord(
                f"{what}: field {key!r} is {value!r}, expected a string or a number; it was not "
                "written by beat_lock or was edited by hand"
            )
        fields[key] = next(iter(value.values()))
    return fields


class DynamoDBStore(LeaseStore):
    """Leases of any number of locks in one DynamoDB table (``dynamodb://TABLE?region=R``)."""

    def __init__(
        self, location: LockLocation, timings: LeaseTimings, *, endpoint_url: str | None = None
    ) -> None:
        if location.backend != "dynamodb" or not location.table:
            raise ConfigError(f"DynamoDBStore needs a dynamodb:// location, got {location.url!r}")
        self.location = location
        self.table = location.table
        client = make_client(location.region, timings, endpoint_url)
        self._call = _Caller(client, location.table)

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _record(self, name: str, item: Mapping[str, Any] | None) -> LeaseRecord | None:
        if not item:
            return None
        return record_from_fields(name, _text_fields(item, f"lease record of lock {name!r}"))

    def _update_lease(
        self,
        name: str,
        update: str,
        condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] = NAMES,
    ) -> tuple[bool, LeaseRecord | None]:
        """One conditional UpdateItem on the lease item: (True, record after) or (False,
        record as it was when the condition failed)."""
        # DynamoDB refuses placeholders that the expressions do not use, and an empty map.
        used = set(re.findall(r"[#:]\w+", f"{update} {condition}"))
        placeholders = {
            "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
        }
        try:
            answer = self._call(
                "update_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Key=self._key(f"lease#{name}", "lease"),
                UpdateExpression=update,
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **{key: value for key, value in placeholders.items() if value},
            )
        except _Rejected as exc:
            if "Item" in exc.response:
                return False, self._record(name, exc.response["Item"])
            # No item: it does not exist, or the implementation ignores ALL_OLD (dynalite,
            # older DynamoDB Local). A consistent read tells which.
            return False, self.read(name)
        return True, self._record(name, answer.get("Attributes"))

    def read(self, name: str) -> LeaseRecord | None:
        answer = self._call(
            "get_item",
            TableName=self.table,
            Key=self._key(f"lease#{name}", "lease"),
            ConsistentRead=True,
        )
        return self._record(name, answer.get("Item"))

    def acquire(
        self,
        name: str,
        identity: Identity,
        *,
        expected_version: str | None,
        new_version: str,
        take_pin: bool = False,
    ) -> int | None:
        values = {
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":new": {"S": new_version},
            ":env": {"S": identity.environment},
            ":id": {"S": identity.instance_id},
            ":now": {"S": now_iso()},
        }
        update = (
            "SET #token = if_not_exists(#token, :zero) + :one, #version = :new, #he = :env, "
            "#hi = :id, #ra = :now, #ts = :now, #rn = :zero"
        )
        if take_pin:
            if expected_version is None:
                raise ValueError("a fallback (take_pin) needs the version that went unchanged")
            condition = "#version = :expected"
            update += ", #pin = :env"
        elif expected_version is None:
            condition = f"attribute_not_exists(#hi) AND {PIN_ALLOWS}"
        else:
            condition = f"(attribute_not_exists(#hi) OR #version = :expected) AND {PIN_ALLOWS}"
        if expected_version is not None:
            values[":expected"] = {"S": expected_version}
        done, record = self._update_lease(name, update + " REMOVE #te", condition, values)
        if done or (record is not None and record.version == new_version):
            return record.token
        return None

    def renew(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        done, record = self._update_lease(
            name,
            "SET #version = :new, #ra = :now, #rn = if_not_exists(#rn, :zero) + :one",
            f"{HOLDS} AND {PIN_ALLOWS}",
            self._holder_values(identity, token, new_version)
            | {":zero": {"N": "0"}, ":one": {"N": "1"}},
        )
        return done or (record is not None and record.version == new_version)

    def release(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        done, record = self._update_lease(
            name,
            "SET #version = :new, #te = :now REMOVE #he, #hi",
            HOLDS,
            self._holder_values(identity, token, new_version),
        )
        return done or (record is not None and record.version == new_version)

    def _holder_values(self, identity: Identity, token: int, new_version: str) -> dict[str, Any]:
        """Values of the HOLDS condition, plus the new version and this host's time."""
        return {
            ":id": {"S": identity.instance_id},
            ":env": {"S": identity.environment},
            ":token": {"N": str(token)},
            ":new": {"S": new_version},
            ":now": {"S": now_iso()},
        }

    def claim(
        self,
        name: str,
        entry: str,
        slot: datetime,
        *,
        identity: Identity,
        token: int,
        claim_id: str,
    ) -> ClaimResult:
        names = {
            **NAMES,
            "#slot": f"slot:{entry}",
            "#runs": f"runs:{entry}",
            "#claim": f"claim:{entry}",
            "#by": f"by:{entry}",
        }
        values = self._holder_values(identity, token, claim_id) | {
            ":slot": {"N": str(slot_millis(slot))},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":by": {"S": f"{token}/{identity.environment}"},
        }
        done, record = self._update_lease(
            name,
            "SET #slot = :slot, #runs = if_not_exists(#runs, :zero) + :one, #claim = :new, "
            "#by = :by",
            f"{HOLDS} AND {PIN_ALLOWS} AND (attribute_not_exists(#slot) OR #slot < :slot)",
            values,
            names,
        )
        return claim_result(done, record, entry, slot, identity, token, claim_id)

    def pin(
        self,
        name: str,
        environment: str | None,
        *,
        expected_token: int | None,
        new_version: str,
        end_tenure: bool,
    ) -> LeaseRecord | None:
        # DynamoDB cannot make one clause of an update conditional on another field, so read,
        # decide, and write on condition that nothing changed since the read.
        for _ in range(PIN_ATTEMPTS):
            record = self.read(name)
            token = record.token if record is not None else 0
            if expected_token is not None and token != expected_token:
                return None
            ends = (
                end_tenure
                and record is not None
                and record.holder is not None
                and environment is not None
                and record.holder.environment != environment
            )
            sets = ["#version = :new", "#token = :token"]
            removes = ["#ht", "#ha"]
            values = {":new": {"S": new_version}, ":token": {"N": str(token + int(ends))}}
            if environment is None:
                removes.append("#pin")
            else:
                sets.append("#pin = :pin")
                values[":pin"] = {"S": environment}
            if ends:
                sets.append("#te = :now")
                removes += ["#he", "#hi"]
                values[":now"] = {"S": now_iso()}
            condition = "attribute_not_exists(#version)"
            if record is not None:
                condition = "#version = :seen"
                values[":seen"] = {"S": record.version}
            update = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
            done, written = self._update_lease(name, update, condition, values)
            if done or (written is not None and written.version == new_version):
                return written
        raise StoreUnavailable(
            f"the lease record of lock {name!r} changed during each of {PIN_ATTEMPTS} attempts "
            "to pin it; try again"
        )

    def announce(
        self, name: str, environment: str | None, *, expected_token: int | None
    ) -> LeaseRecord | None:
        condition = "attribute_exists(#version)"  # never create the record: it needs a version
        values: dict[str, Any] = {}
        if expected_token is not None:
            condition += " AND #token = :token"
            values[":token"] = {"N": str(expected_token)}
        if environment is None:
            update = "REMOVE #ht, #ha"
        else:
            update = "SET #ht = :env, #ha = :now"
            values |= {":env": {"S": environment}, ":now": {"S": now_iso()}}
        done, record = self._update_lease(name, update, condition, values)
        return record if done else None

    def heartbeat(
        self,
        name: str,
        identity: Identity,
        *,
        role: str,
        ttl_seconds: float,
        sequence: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        fields = participant_fields(identity, role=role, sequence=sequence, detail=detail)
        names = {f"#f{i}": field for i, field in enumerate(fields)}
        values = {f":f{i}": {"S": value} for i, value in enumerate(fields.values())}
        sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(f"member#{name}", identity.instance_id),
            UpdateExpression="SET "
            + ", ".join(sets)
            + ", #expires = :expires, #joined = if_not_exists(#joined, :seen)",
            ExpressionAttributeNames=names | {"#expires": "expires_at", "#joined": "joined_at"},
            ExpressionAttributeValues=values
            | {
                ":expires": {"N": str(math.ceil(time.time() + ttl_seconds))},
                ":seen": {"S": fields["seen_at"]},
            },
        )

    def leave(self, name: str, identity: Identity) -> None:
        self._call(
            "delete_item",
            TableName=self.table,
            Key=self._key(f"member#{name}", identity.instance_id),
        )

    def participants(self, name: str) -> list[Participant]:
        items = self._query(f"member#{name}", limit=None)
        rows = [_text_fields(item, f"heartbeat of lock {name!r}") for item in items]
        return participants_from_rows(name, rows, time.time())

    def mark_run(self, name: str, run: str, *, ttl_seconds: float) -> bool:
        expires_at = math.ceil(time.time() + ttl_seconds)
        try:
            self._call(
                "put_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Item={**self._key(f"run#{name}", run), "expires_at": {"N": str(expires_at)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _Rejected:
            return False
        return True

    def record_event(self, name: str, event: AuditEvent) -> None:
        item = {key: {"S": value} for key, value in event_fields(event).items()}
        expires_at = math.ceil(time.time() + AUDIT_TTL.total_seconds())
        self._call(
            "put_item",
            TableName=self.table,
            Item={
                **item,
                **self._key(f"audit#{name}", event_key(event)),
                "expires_at": {"N": str(expires_at)},
            },
        )

    def events(self, name: str, limit: int = 50) -> list[AuditEvent]:
        items = self._query(f"audit#{name}", limit=limit, newest_first=True)
        return [
            event_from_fields(name, _text_fields(item, f"audit event of lock {name!r}"))
            for item in items
        ]

    def _query(self, pk: str, *, limit: int | None, newest_first: bool = False) -> list[dict]:
        items: list[dict] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": not newest_first,
        }
        while limit is None or len(items) < limit:
            if limit is not None:
                request["Limit"] = limit - len(items)
            answer = self._call("query", **request)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return items

    def ping(self) -> None:
        self.table_status()

    def table_status(self) -> str:
        """The table's status (ACTIVE, CREATING...); raises unless it answers with our key."""
        table = self._call("describe_table", TableName=self.table)["Table"]
        if table.get("KeySchema") != KEY_SCHEMA:
            raise ConfigError(
                f"DynamoDB table {self.table!r} has key schema {table.get('KeySchema')!r}; a lock "
                "table needs pk (S, HASH) + sk (S, RANGE): point beat_lock_url at a table made by "
                "`handover init`"
            )
        return table.get("TableStatus", "")

    def close(self) -> None:
        self._call.client.close()
