"""How the stored items are laid out as flat named text fields, the same in both backends.

DynamoDB keeps the lease as one item and Redis as one hash; both hold the same field names, so
reading a record back, and telling why a conditional write failed, is written once, here.
Heartbeats and audit events are flat text fields too (a DynamoDB item, a JSON object in Redis).
The lease record's fields:

    token, version, renewals            the fencing token, the record version, renewals so far
    holder_env, holder_id               the holder (both absent when nobody holds the lease)
    pin                                 the one environment allowed to hold it (absent: any)
    renewed_at, tenure_started_at,      wall-clock ISO-8601 times, for people only
    tenure_ended_at
    handover_to,                        an announced handover: the environment a pin is about to
    handover_announced_at               move the lease to (absent: none), and when (for people)
    slot:<entry>                        last claimed slot of the entry, epoch milliseconds
    runs:<entry>                        how many slots of the entry were ever claimed
    claim:<entry>                       claim id of the last claim (recognises our own retry)
    by:<entry>                          "<token>/<environment>" of the last claim

Slots are compared at millisecond precision.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from beat_handover.beat_lock.errors import ConfigError, CorruptRecord
from beat_handover.beat_lock.identity import Identity, validate_environment
from beat_handover.beat_lock.record import (
    AuditEvent,
    ClaimOutcome,
    ClaimResult,
    EntryClaim,
    LeaseRecord,
    Participant,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENTRY_PREFIXES = ("slot:", "runs:", "claim:", "by:")


def new_version() -> str:
    """A fresh record version (or claim id): random, so a retried write can be recognised."""
    return secrets.token_hex(8)


def now_iso() -> str:
    """This host's wall-clock time as ISO-8601 UTC, written for people to read."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def slot_millis(slot: datetime) -> int:
    """``slot`` as epoch milliseconds; it must be timezone-aware (a naive time is ambiguous)."""
    if not isinstance(slot, datetime) or slot.tzinfo is None or slot.utcoffset() is None:
        raise ConfigError(
            f"a slot must be a timezone-aware datetime (the run's fire time in UTC), got {slot!r}"
        )
    return (slot - EPOCH) // timedelta(milliseconds=1)


def slot_from_millis(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def holder_matches(record: LeaseRecord | None, identity: Identity, token: int) -> bool:
    """``identity`` holds the lease with ``token`` and the pin allows its environment."""
    return (
        record is not None
        and record.holder == identity
        and record.token == token
        and record.pin in (None, identity.environment)
    )


def claim_result(
    done: bool,
    record: LeaseRecord | None,
    entry: str,
    slot: datetime,
    identity: Identity,
    token: int,
    claim_id: str,
) -> ClaimResult:
    """The outcome of a claim write, from whether its condition held (``done``) and the record
    (as written if it held, as it was if it did not). Our own earlier write of this claim (a
    retry after a lost answer) counts as claimed."""
    last = record.claims.get(entry) if record is not None else None
    if done or (last is not None and last.claim_id == claim_id):
        reason = "" if done else "our earlier attempt stored it"
        return ClaimResult(ClaimOutcome.CLAIMED, entry, slot, last, reason)
    if not holder_matches(record, identity, token):
        return ClaimResult(
            ClaimOutcome.LEASE_LOST, entry, slot, last, lease_lost_reason(record, identity, token)
        )
    return ClaimResult(
        ClaimOutcome.ALREADY_CLAIMED,
        entry,
        slot,
        last,
        f"slot {slot.isoformat()} is not later than the last claimed slot "
        f"{last.slot.isoformat() if last else None} (token {last.token if last else None})",
    )


def lease_lost_reason(record: LeaseRecord | None, identity: Identity, token: int) -> str:
    """A sentence saying how the record differs from ``identity`` holding it with ``token``."""
    if record is None:
        return "the lease record does not exist"
    if record.holder != identity:
        return f"the holder is {record.holder or 'nobody'} (token {record.token}), not us"
    if record.token != token:
        return f"the token is {record.token}, not our {token}"
    return f"the lease is pinned to {record.pin!r}, not {identity.environment!r}"


def record_from_fields(name: str, fields: Mapping[str, str]) -> LeaseRecord:
    """Parse the stored fields of lock ``name``; CorruptRecord names any field we never write."""
    reader = _FieldReader(
        f"lease record of lock {name!r}",
        fields,
        "Repair the field (never delete the record: its token must never go back)",
    )
    holder_env = fields.get("holder_env")
    holder_id = fields.get("holder_id")
    if (holder_env is None) != (holder_id is None):
        field = "holder_env" if holder_env is None else "holder_id"
        reader.fail(field, fields.get(field), "present whenever the other holder field is")
    holder = None if holder_env is None else reader.identity("holder_env", "holder_id")
    return LeaseRecord(
        name=name,
        token=reader.integer("token"),
        version=reader.text("version"),
        holder=holder,
        pin=reader.environment("pin"),
        renewed_at=reader.time("renewed_at"),
        tenure_started_at=reader.time("tenure_started_at"),
        tenure_ended_at=reader.time("tenure_ended_at"),
        renewals=reader.integer("renewals", default=0),
        claims=reader.claims(),
        handover_to=reader.environment("handover_to"),
        handover_announced_at=reader.time("handover_announced_at"),
    )


def participant_fields(
    identity: Identity,
    *,
    role: str,
    sequence: int,
    detail: Mapping[str, Any] | None,
) -> dict[str, str]:
    """The stored fields of one heartbeat, less ``expires_at`` and ``joined_at`` (the store
    sets those: expiry from its own clock where it has one, the first heartbeat's time)."""
    return {
        "environment": identity.environment,
        "instance_id": identity.instance_id,
        "role": role,
        "seen_at": now_iso(),
        "sequence": str(sequence),
        "detail": json.dumps(dict(detail or {}), sort_keys=True, default=str),
    }


def participants_from_rows(
    name: str, rows: list[Mapping[str, str]], now: float
) -> list[Participant]:
    """Heartbeats not expired at ``now`` (epoch seconds), oldest instance first. Stores delete
    expired heartbeats lazily (DynamoDB's TTL within days), so expiry is checked on read."""
    found = []
    for fields in rows:
        reader = _FieldReader(
            f"heartbeat {fields.get('instance_id')!r} of lock {name!r}",
            fields,
            "Delete the heartbeat; its participant writes a fresh one within seconds",
        )
        expires_at = reader.number("expires_at")
        if expires_at <= now:
            continue
        identity = reader.identity("environment", "instance_id")
        participant = Participant(
            identity=identity,
            role=reader.text("role"),
            seen_at=reader.time("seen_at") or EPOCH,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            sequence=reader.integer("sequence"),
            detail=reader.json_map("detail"),
        )
        found.append((reader.time("joined_at") or EPOCH, identity.instance_id, participant))
    return [participant for *_, participant in sorted(found, key=lambda row: row[:2])]


def event_key(event: AuditEvent) -> str:
    """Sort key of an audit event: its UTC time (sortable text) and a random suffix."""
    if event.at.tzinfo is None:
        raise ConfigError(f"an audit event's time must be timezone-aware, got {event.at!r}")
    at = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{at}#{secrets.token_hex(4)}"


def event_fields(event: AuditEvent) -> dict[str, str]:
    return {
        "at": event.at.astimezone(UTC).isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "host": event.host,
        "result": event.result,
        "detail": json.dumps(dict(event.detail), sort_keys=True, default=str),
    }


def event_from_fields(name: str, fields: Mapping[str, str]) -> AuditEvent:
    reader = _FieldReader(
        f"audit event of lock {name!r}", fields, "Delete the event; the audit log is advisory"
    )
    return AuditEvent(
        at=reader.time("at") or EPOCH,
        kind=reader.text("kind"),
        actor=reader.text("actor"),
        host=reader.text("host"),
        result=reader.text("result"),
        detail=reader.json_map("detail"),
    )


class _FieldReader:
    """Reads typed values out of the flat fields, raising CorruptRecord on a wrong shape."""

    def __init__(self, what: str, fields: Mapping[str, str], advice: str) -> None:
        self.what = what
        self.fields = fields
        self.advice = advice

    def fail(self, field: str, value: object, expected: str) -> NoReturn:
        raise CorruptRecord(
            f"{self.what}: field {field!r} is {value!r}, expected {expected}; it was not "
            f"written by beat_lock or was edited by hand. {self.advice}"
        )

    def text(self, field: str) -> str:
        value = self.fields.get(field)
        if not value:
            self.fail(field, value, "a non-empty string")
        return value

    def integer(self, field: str, default: int | None = None) -> int:
        value = self.fields.get(field)
        if value is None and default is not None:
            return default
        if value is None or not (value.isascii() and value.isdigit()):
            self.fail(field, value, "a whole number of at least 0")
        return int(value)

    def identity(self, environment_field: str, instance_field: str) -> Identity:
        environment = self.environment(environment_field)
        if environment is None:
            self.fail(environment_field, None, "an environment label such as 'ecs'")
        return Identity(environment, self.text(instance_field))

    def environment(self, field: str) -> str | None:
        value = self.fields.get(field)
        if value is None:
            return None
        try:
            return validate_environment(value)
        except ConfigError:
            self.fail(field, value, "an environment label such as 'ecs'")
        return None

    def time(self, field: str) -> datetime | None:
        value = self.fields.get(field)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.fail(field, value, "an ISO-8601 time with a UTC offset")
        return parsed

    def number(self, field: str) -> float:
        value = self.fields.get(field)
        try:
            return float(value)
        except (TypeError, ValueError):
            self.fail(field, value, "a number")

    def json_map(self, field: str) -> dict[str, Any]:
        value = self.fields.get(field)
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            self.fail(field, value, "a JSON object")
        return parsed

    def claims(self) -> dict[str, EntryClaim]:
        entries = {
            field.split(":", 1)[1] for field in self.fields if field.startswith(ENTRY_PREFIXES)
        }
        return {entry: self.claim(entry) for entry in sorted(entries)}

    def claim(self, entry: str) -> EntryClaim:
        by_field = f"by:{entry}"
        by = self.text(by_field)
        token, _, environment = by.partition("/")
        if not (token.isascii() and token.isdigit()) or not environment:
            self.fail(by_field, by, "'<token>/<environment>'")
        return EntryClaim(
            entry=entry,
            slot=slot_from_millis(self.integer(f"slot:{entry}")),
            runs=self.integer(f"runs:{entry}"),
            token=int(token),
            environment=environment,
            claim_id=self.text(f"claim:{entry}"),
        )
