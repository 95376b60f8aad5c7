"""The DynamoDB backend: one table, every write one conditional request on one item.

Items of lock NAME (keys in :mod:`beat_handover.beat_lock.keys`, fields in
:mod:`beat_handover.beat_lock.layout`): the lease record (never deleted, no TTL, a few hundred
bytes, so a renewal is one write unit and a poll one read unit, half when eventually consistent);
one claim item per schedule entry, so a claim is one write unit whatever the schedule's size;
heartbeats and audit events, with a TTL in ``expires_at``. No request is a transaction, so every
DynamoDB implementation serves (dynalite, which the race tests use, has none).

Fencing. A claim item cannot be written in the same request as a condition on the lease record,
so it carries a fence: the token of the newest tenure that fenced it, raised (never lowered) by
each new leader before it dispatches, and a claim is one ``UpdateItem`` conditional on
``fence = token`` and the slot being later than the item's. A new leader's fence:

1. reads the lease record (consistent) and stops if it does not hold it with its token;
2. lists every claim item of the lock (a consistent ``Query``), so an entry that only an older
   leader knows is fenced too;
3. raises the fence of each listed item and of each entry it will claim, creating missing items
   (``FENCE_CONCURRENCY`` writes in flight); each write returns the item as written, which is
   the entry's last claim, atomically with the fence; a fence already higher means a newer
   leader: stop;
4. confirms, with one write on the lease record conditional on holding it with its token, and
   only then reports the claims.

A former leader's claim is then refused on every entry the new leader fenced. An item a former
leader creates after step 2 is created by a fence of that former leader, whose step 4 comes after
it; if step 4 succeeded, the former leader held the lease after creating the item, so the new
leader's acquire, and its step 2, came later and listed it; if step 4 failed, the former leader
never claims on it. Step 3 on an item an older tenure is claiming at that moment is serialised by
DynamoDB: either the claim lands first and the fence returns it, or the fence lands first and the
claim is refused. The tenure start costs one write unit per entry, once; nothing per renewal.

A write whose condition failed returns the item as it was (``ALL_OLD``), so the store tells in
the same request whether the failure was our own earlier attempt (a botocore retry after a lost
answer: same ``version`` or ``claim_id``), a lost lease, a newer fence or a slot already claimed.
Without an item in the answer the item does not exist. (dynalite ignores
``ReturnValuesOnConditionCheckFailure``; its tests put the item into the answer.)
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
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

from beat_handover.beat_lock import keys
from beat_handover.beat_lock.errors import (
    ConfigError,
    CorruptRecord,
    StoreError,
    StoreMissing,
    StoreUnavailable,
)
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import (
    CLAIM_ADVICE,
    FieldReader,
    acked_text,
    claim_from_fields,
    claim_result,
    doubt_fields,
    doubt_from_fields,
    doubt_key,
    event_fields,
    event_from_fields,
    event_key,
    fence_lost_reason,
    holder_matches,
    now_iso,
    participant_fields,
    participants_from_rows,
    record_from_fields,
    slot_millis,
)
from beat_handover.beat_lock.legacy import (
    GUARD_FIELD,
    GUARD_VALUE,
    legacy_claims,
    legacy_fields,
    merged,
)
from beat_handover.beat_lock.location import LockLocation, parse_lock_url
from beat_handover.beat_lock.record import (
    Acked,
    AuditEvent,
    ClaimResult,
    Doubt,
    EntryClaim,
    LeaseRecord,
    Participant,
)
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.store_clock import StoreClock
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.beat_lock.unreachable import unreachable

AUDIT_TTL = timedelta(days=400)
PIN_ATTEMPTS = 5
FENCE_CONCURRENCY = 16  # fence writes in flight at once when a tenure starts
# Legacy fields removed per write, 25 entries' four (legacy_fields keeps an entry's together): far
# inside DynamoDB's 4 KB expression cap and the ~100 clauses moto's recursive parser takes. A
# conversion happens once per lock; the extra writes cost nothing that matters.
LEGACY_FIELDS_PER_WRITE = 100
MAX_SORT_KEY_BYTES = 1024
# Items per Query page: a page of a few hundred KB answers well inside the request timeout
# (DynamoDB's own cap is 1 MB), however many claim items a lock has.
QUERY_PAGE_ITEMS = 1000
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
    "#guard": GUARD_FIELD,
    "#slot": "slot",
    "#runs": "runs",
    "#environment": "environment",
    "#claim_id": "claim_id",
    "#fence": "fence",
    "#epoch": "epoch",
    "#acked": "acked",
    "#acked_token": "acked_token",
    "#acked_epoch": "acked_epoch",
}
PIN_ALLOWS = "(attribute_not_exists(#pin) OR #pin = :env)"
FENCE_NOT_NEWER = "(attribute_not_exists(#fence) OR #fence <= :token)"
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
        # The fence's writes in flight, and the lease keeper and the scheduler beside them.
        max_pool_connections=FENCE_CONCURRENCY + 4,
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


def _date_header(response: Mapping[str, Any]) -> str | None:
    return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")


class _Caller:
    """Calls the client, mapping botocore's errors onto the toolkit's, and reads the store's
    clock from the ``Date`` header of every answer, refusals included."""

    def __init__(self, client: Any, table: str, clock: StoreClock) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def __call__(
        self, operation: str, *, expect: tuple[str, ...] = (), **kwargs: Any
    ) -> dict[str, Any]:
        """Call ``operation``; error codes in ``expect`` raise _Rejected for the caller."""
        sent = self.clock.sent()
        try:
            response = getattr(self.client, operation)(**kwargs)
            self.clock.observe_http_date(sent, _date_header(response))
            return response
        except ClientError as exc:
            self.clock.observe_http_date(sent, _date_header(exc.response))
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


def _fence(name: str, entry: str, fields: Mapping[str, str]) -> int | None:
    """The fence of a claim item (None: no item, or never fenced)."""
    if "fence" not in fields:
        return None
    what = f"claim item of entry {entry!r} of lock {name!r}"
    return FieldReader(what, fields, CLAIM_ADVICE).integer("fence")


class _NewerFence(Exception):
    """A claim item is fenced by a newer tenure than the one fencing it now."""


class DynamoDBStore(LeaseStore):
    """Leases of any number of locks in one DynamoDB table (``dynamodb://TABLE?region=R``)."""

    def __init__(
        self,
        location: LockLocation,
        timings: LeaseTimings,
        *,
        endpoint_url: str | None = None,
        clock: StoreClock | None = None,
    ) -> None:
        if location.backend != "dynamodb" or not location.table:
            raise ConfigError(f"DynamoDBStore needs a dynamodb:// location, got {location.url!r}")
        self.location = location
        self.table = location.table
        client = make_client(location.region, timings, endpoint_url)
        self._clock = clock or StoreClock()  # tests give one with a shifted wall clock
        self._call = _Caller(client, location.table, self._clock)

    def store_clock(self) -> StoreClock:
        return self._clock

    def _store_now(self) -> float:
        """Expiry times are judged by every reader: a host whose clock is wrong must not write
        them by its own."""
        return self._clock.store_now()

    @property
    def client(self) -> Any:
        """The boto3 client (tests hook emulator quirks onto its events)."""
        return self._call.client

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _lease_key(self, name: str) -> dict[str, Any]:
        return self._key(keys.partition(keys.LEASE, name), keys.LEASE_SORT_KEY)

    def _claim_key(self, name: str, entry: str) -> dict[str, Any]:
        size = len(entry.encode())
        if not 0 < size <= MAX_SORT_KEY_BYTES:
            raise ConfigError(
                f"schedule entry name {entry[:80]!r} is {size} bytes long; a DynamoDB lock "
                f"table keeps each entry's claims under its name, which must be 1 to "
                f"{MAX_SORT_KEY_BYTES} bytes (UTF-8): rename the entry"
            )
        return self._key(keys.partition(keys.CLAIM, name), entry)

    def _update(
        self,
        item_key: Mapping[str, Any],
        update: str,
        condition: str,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
    ) -> tuple[bool, Mapping[str, Any] | None]:
        """One conditional UpdateItem: (True, item as written) or (False, item as it was when
        the condition failed, None if there was none). Field names: NAMES, plus ``names``."""
        # DynamoDB refuses placeholders that the expressions do not use, and an empty map.
        used = set(re.findall(r"[#:]\w+", f"{update} {condition}"))
        all_names = {**NAMES, **(names or {})}
        placeholders = {
            "ExpressionAttributeNames": {k: v for k, v in all_names.items() if k in used},
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
        }
        try:
            answer = self._call(
                "update_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Key=item_key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **{key: value for key, value in placeholders.items() if value},
            )
        except _Rejected as exc:
            return False, exc.response.get("Item")
        return True, answer.get("Attributes")

    def _update_lease(
        self, name: str, update: str, condition: str, values: Mapping[str, Any]
    ) -> tuple[bool, LeaseRecord | None]:
        """One conditional UpdateItem on the lease record: (True, record as written) or (False,
        record as it was when the condition failed)."""
        done, item = self._update(self._lease_key(name), update, condition, values)
        return done, self._record(name, item)

    def _record(self, name: str, item: Mapping[str, Any] | None) -> LeaseRecord | None:
        if not item:
            return None
        return record_from_fields(name, _text_fields(item, f"lease record of lock {name!r}"))

    def _lease_fields(self, name: str, *, consistent: bool = True) -> dict[str, str]:
        """The lease record's stored fields ({} if it does not exist)."""
        answer = self._call(
            "get_item", TableName=self.table, Key=self._lease_key(name), ConsistentRead=consistent
        )
        return _text_fields(answer.get("Item") or {}, f"lease record of lock {name!r}")

    def read(self, name: str, *, consistent: bool = True) -> LeaseRecord | None:
        fields = self._lease_fields(name, consistent=consistent)
        return record_from_fields(name, fields) if fields else None

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
                raise ConfigError(
                    "a fallback (take_pin=True) needs expected_version, the record version that "
                    "went unchanged, got None"
                )
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

    def renew(
        self,
        name: str,
        identity: Identity,
        token: int,
        *,
        new_version: str,
        acked: Acked | None = None,
    ) -> bool:
        update = "SET #version = :new, #ra = :now, #rn = if_not_exists(#rn, :zero) + :one"
        values = self._holder_values(identity, token, new_version) | {
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        if acked is not None:
            # The holder's own acknowledgement is later than any older tenure's, so it is set
            # as it is; two numeric copies let acknowledge() compare in a condition.
            update += ", #acked = :acked, #acked_token = :at, #acked_epoch = :ae"
            values |= self._acked_values(acked)
        done, record = self._update_lease(name, update, f"{HOLDS} AND {PIN_ALLOWS}", values)
        return done or (record is not None and record.version == new_version)

    def _acked_values(self, acked: Acked) -> dict[str, Any]:
        return {
            ":acked": {"S": acked_text(acked)},
            ":at": {"N": str(acked.token)},
            ":ae": {"N": str(acked.epoch)},
        }

    def acknowledge(self, name: str, acked: Acked) -> bool:
        done, _ = self._update_lease(
            name,
            "SET #acked = :acked, #acked_token = :at, #acked_epoch = :ae",
            "attribute_exists(#version) AND (attribute_not_exists(#acked_token) OR "
            "#acked_token < :at OR (#acked_token = :at AND #acked_epoch < :ae))",
            self._acked_values(acked),
        )
        return done

    def release(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        done, record = self._update_lease(
            name,
            "SET #version = :new, #te = :now REMOVE #he, #hi",
            HOLDS,
            self._holder_values(identity, token, new_version),
        )
        return done or (record is not None and record.version == new_version)

    def _holds_values(self, identity: Identity, token: int) -> dict[str, Any]:
        """Values of the HOLDS and PIN_ALLOWS conditions."""
        return {
            ":id": {"S": identity.instance_id},
            ":env": {"S": identity.environment},
            ":token": {"N": str(token)},
        }

    def _holder_values(self, identity: Identity, token: int, new_version: str) -> dict[str, Any]:
        """Values of the HOLDS condition, plus the new version and this host's time."""
        return self._holds_values(identity, token) | {
            ":new": {"S": new_version},
            ":now": {"S": now_iso()},
        }

    # -- claims --------------------------------------------------------------------------------

    def claim(
        self,
        name: str,
        entry: str,
        slot: datetime,
        *,
        identity: Identity,
        token: int,
        claim_id: str,
        epoch: int = 0,
        acked: Acked | None = None,
    ) -> ClaimResult:
        update = (
            "SET #slot = :slot, #runs = if_not_exists(#runs, :zero) + :one, #token = :token, "
            "#environment = :env, #claim_id = :claim_id, #epoch = :epoch"
        )
        if acked is not None:
            update += ", #acked = :acked"
        done, item = self._update(
            self._claim_key(name, entry),
            update,
            "#fence = :token AND (attribute_not_exists(#slot) OR #slot < :slot)",
            {
                ":slot": {"N": str(slot_millis(slot))},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":token": {"N": str(token)},
                ":env": {"S": identity.environment},
                ":claim_id": {"S": claim_id},
                ":epoch": {"N": str(epoch)},
                ":acked": {"S": acked_text(acked) if acked is not None else ""},
            },
        )
        fields = self._claim_fields(name, entry, item)
        lost = None if done else fence_lost_reason(entry, _fence(name, entry, fields), token)
        return claim_result(
            done, claim_from_fields(name, entry, fields), lost, entry, slot, claim_id
        )

    def _claim_fields(
        self, name: str, entry: str, item: Mapping[str, Any] | None
    ) -> dict[str, str]:
        return _text_fields(item or {}, f"claim item of entry {entry!r} of lock {name!r}")

    def read_claim(self, name: str, entry: str) -> EntryClaim | None:
        answer = self._call(
            "get_item",
            TableName=self.table,
            Key=self._claim_key(name, entry),
            ConsistentRead=True,
        )
        return claim_from_fields(name, entry, self._claim_fields(name, entry, answer.get("Item")))

    def _claim_items(self, name: str) -> dict[str, dict[str, str]]:
        """Every claim item of lock ``name``: entry -> fields (one consistent Query)."""
        items = self._query(keys.partition(keys.CLAIM, name), limit=None)
        return {item["sk"]["S"]: self._claim_fields(name, item["sk"]["S"], item) for item in items}

    def last_claims(self, name: str) -> dict[str, EntryClaim]:
        stored = {
            entry: claim
            for entry, fields in self._claim_items(name).items()
            if (claim := claim_from_fields(name, entry, fields)) is not None
        }
        return merged(stored, legacy_claims(name, self._lease_fields(name)))

    def fence(
        self,
        name: str,
        entries: Collection[str],
        *,
        identity: Identity,
        token: int,
        everything: bool,
    ) -> dict[str, EntryClaim] | None:
        lease_fields = self._lease_fields(name)
        if not holder_matches(
            record_from_fields(name, lease_fields) if lease_fields else None, identity, token
        ):
            return None
        legacy = legacy_claims(name, lease_fields)
        items = self._claim_items(name) if everything else {}
        # Every legacy claim is copied whatever ``everything`` says: the confirm removes them all.
        targets = set(entries) | set(legacy) | (set(items) if everything else set())

        def fence_one(entry: str) -> EntryClaim | None:
            return self._fence_entry(name, entry, token, items.get(entry), legacy.get(entry))

        pool = ThreadPoolExecutor(min(FENCE_CONCURRENCY, max(1, len(targets))))
        try:
            claims = dict(zip(sorted(targets), pool.map(fence_one, sorted(targets)), strict=True))
        except _NewerFence:
            return None
        finally:
            pool.shutdown(cancel_futures=True)
        if not self._confirm_fence(name, identity, token, legacy_fields(lease_fields)):
            return None
        return {entry: claim for entry, claim in claims.items() if claim is not None}

    def _fence_entry(
        self,
        name: str,
        entry: str,
        token: int,
        listed: Mapping[str, str] | None,
        legacy: EntryClaim | None,
    ) -> EntryClaim | None:
        """Raise the fence of one entry to ``token`` and return its last claim; a legacy claim
        later than the item's is copied in the same write. Raises _NewerFence."""
        stored = claim_from_fields(name, entry, listed) if listed is not None else None
        if legacy is not None and (stored is None or legacy.slot > stored.slot):
            done, item = self._update(
                self._claim_key(name, entry),
                "SET #fence = :token, #slot = :slot, #runs = :runs, #token = :claim_token, "
                "#environment = :env, #claim_id = :claim_id",
                f"{FENCE_NOT_NEWER} AND (attribute_not_exists(#slot) OR #slot < :slot)",
                {
                    ":token": {"N": str(token)},
                    ":slot": {"N": str(slot_millis(legacy.slot))},
                    ":runs": {"N": str(legacy.runs)},
                    ":claim_token": {"N": str(legacy.token)},
                    ":env": {"S": legacy.environment},
                    ":claim_id": {"S": legacy.claim_id},
                },
            )
            if done:
                return claim_from_fields(name, entry, self._claim_fields(name, entry, item))
            self._refuse_newer(name, entry, token, item)  # else the item holds a later slot
        elif listed is not None and _fence(name, entry, listed) == token:
            return stored  # fenced by this tenure already (a fence retried after an outage)
        done, item = self._update(
            self._claim_key(name, entry),
            "SET #fence = :token",
            FENCE_NOT_NEWER,
            {":token": {"N": str(token)}},
        )
        if not done:
            self._refuse_newer(name, entry, token, item)
        return claim_from_fields(name, entry, self._claim_fields(name, entry, item))

    def _refuse_newer(
        self, name: str, entry: str, token: int, item: Mapping[str, Any] | None
    ) -> None:
        """Raise _NewerFence if the item's fence is above ``token``."""
        fence = _fence(name, entry, self._claim_fields(name, entry, item))
        if fence is not None and fence > token:
            raise _NewerFence(entry)

    def _confirm_fence(self, name: str, identity: Identity, token: int, legacy: list[str]) -> bool:
        """Step 4 of the fence: write the guard (removing the legacy fields, a batch per write),
        each write conditional on holding the lease with ``token``."""
        batches = [
            legacy[i : i + LEGACY_FIELDS_PER_WRITE]
            for i in range(0, len(legacy), LEGACY_FIELDS_PER_WRITE)
        ] or [[]]
        for i, batch in enumerate(batches):
            placeholders = {f"#legacy{n}": field for n, field in enumerate(batch)}
            update = "SET #guard = :guard" if i == 0 else ""
            if batch:
                update += " REMOVE " + ", ".join(placeholders)
            done, _ = self._update(
                self._lease_key(name),
                update.strip(),
                f"{HOLDS} AND {PIN_ALLOWS}",
                self._holds_values(identity, token) | {":guard": {"S": GUARD_VALUE}},
                placeholders,
            )
            if not done:
                return False
        return True

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
        fields = participant_fields(
            identity, role=role, sequence=sequence, detail=detail, now=self._store_now()
        )
        names = {f"#f{i}": field for i, field in enumerate(fields)}
        values = {f":f{i}": {"S": value} for i, value in enumerate(fields.values())}
        sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(keys.partition(keys.MEMBER, name), identity.instance_id),
            UpdateExpression="SET "
            + ", ".join(sets)
            + ", #expires = :expires, #joined = if_not_exists(#joined, :seen)",
            ExpressionAttributeNames=names | {"#expires": "expires_at", "#joined": "joined_at"},
            ExpressionAttributeValues=values
            | {
                ":expires": {"N": str(math.ceil(self._store_now() + ttl_seconds))},
                ":seen": {"S": fields["seen_at"]},
            },
        )

    def leave(self, name: str, identity: Identity) -> None:
        self._call(
            "delete_item",
            TableName=self.table,
            Key=self._key(keys.partition(keys.MEMBER, name), identity.instance_id),
        )

    def participants(self, name: str) -> list[Participant]:
        items = self._query(keys.partition(keys.MEMBER, name), limit=None)
        rows = [_text_fields(item, f"heartbeat of lock {name!r}") for item in items]
        return participants_from_rows(name, rows, self._store_now())

    def mark_run(self, name: str, run: str, *, ttl_seconds: float) -> bool:
        expires_at = math.ceil(self._store_now() + ttl_seconds)
        return self._put_new(
            self._key(keys.partition(keys.RUN, name), run),
            {"expires_at": {"N": str(expires_at)}},
        )

    def record_doubt(self, name: str, doubt: Doubt) -> bool:
        return self._put_new(
            self._key(keys.partition(keys.DOUBT, name), doubt_key(doubt.entry, doubt.slot)),
            {key: {"S": value} for key, value in doubt_fields(doubt).items()},
        )

    def _put_new(self, key: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
        """Put an item only if none has its key; False if one had."""
        try:
            self._call(
                "put_item",
                expect=("ConditionalCheckFailedException",),
                TableName=self.table,
                Item={**fields, **key},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except _Rejected:
            return False
        return True

    def doubts(self, name: str) -> list[Doubt]:
        items = self._query(keys.partition(keys.DOUBT, name), limit=None)
        found = [
            doubt_from_fields(name, _text_fields(item, f"in-doubt slot of lock {name!r}"))
            for item in items
        ]
        return sorted(found, key=lambda doubt: (doubt.entry, doubt.slot))

    def clear_doubt(self, name: str, entry: str, slot: datetime) -> bool:
        answer = self._call(
            "delete_item",
            TableName=self.table,
            Key=self._key(keys.partition(keys.DOUBT, name), doubt_key(entry, slot)),
            ReturnValues="ALL_OLD",
        )
        return bool(answer.get("Attributes"))

    def record_event(self, name: str, event: AuditEvent) -> None:
        item = {key: {"S": value} for key, value in event_fields(event).items()}
        expires_at = math.ceil(time.time() + AUDIT_TTL.total_seconds())
        self._call(
            "put_item",
            TableName=self.table,
            Item={
                **item,
                **self._key(keys.partition(keys.AUDIT, name), event_key(event)),
                "expires_at": {"N": str(expires_at)},
            },
        )

    def events(self, name: str, limit: int = 50) -> list[AuditEvent]:
        items = self._query(keys.partition(keys.AUDIT, name), limit=limit, newest_first=True)
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
            request["Limit"] = QUERY_PAGE_ITEMS if limit is None else limit - len(items)
            answer = self._call("query", **request)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return items

    def lock_names(self) -> list[str]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk",
            "FilterExpression": "sk = :sk AND begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {
                ":sk": {"S": keys.LEASE_SORT_KEY},
                ":prefix": {"S": keys.LEASE},
            },
        }
        names = []
        while True:
            answer = self._call("scan", **request)
            names += [item["pk"]["S"].removeprefix(keys.LEASE) for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return sorted(names)
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

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
