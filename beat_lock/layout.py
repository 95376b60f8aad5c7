"""How the stored items are laid out as flat named text fields, the same in both backends.

DynamoDB keeps each as an item and Redis as a hash or a JSON object (where each lives:
:mod:`beat_handover.beat_lock.keys`), with the same field names, so reading a record back, and
telling why a conditional write failed, is written once, here. Readers ignore fields they do not
know, so a later version can add fields without a migration.

The lease record's fields (a few hundred bytes, whatever the schedule):

    token, version, renewals            the fencing token, the record version, renewals so far
    holder_env, holder_id               the holder (both absent when nobody holds the lease)
    pin                                 the one environment allowed to hold it (absent: any)
    renewed_at, tenure_started_at,      wall-clock ISO-8601 times, for people only
    tenure_ended_at
    handover_to,                        an announced handover: the environment a pin is about to
    handover_announced_at               move the lease to (absent: none), and when (for people)
    by:~claims-moved                    the claims live in claim items; see
                                        :mod:`beat_handover.beat_lock.legacy`
    acked                               TOKEN/EPOCH: how far the claims' publishes are
                                        acknowledged (see ``record.Acked``)

An entry's claim item (one per schedule entry):

    slot                                last claimed slot, epoch milliseconds
    runs                                how many slots of the entry were ever claimed
    token, environment                  fencing token and environment of the last claim
    claim_id                            random id of the last claim (recognises our own retry)
    epoch                               the claim's number within its tenure (absent: 0)
    acked                               TOKEN/EPOCH: the claimant tenure's acknowledgement when
                                        it claimed (absent: none)
    fence                               DynamoDB only: the token of the newest tenure that fenced
                                        the entry; claims are accepted only from that tenure

A slot in doubt (one per entry and slot, until an operator acknowledges it):

    entry, slot, token, environment     the run (slot in epoch milliseconds) and who claimed it
    reason                              why its publish is not known
    noticed_at, noticed_by              when (ISO-8601, for people) and by which instance

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
    Acked,
    AuditEvent,
    ClaimOutcome,
    ClaimResult,
    Doubt,
    EntryClaim,
    LeaseRecord,
    Participant,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LEASE_ADVICE = "Repair the field (never delete the record: its token must never go back)"
CLAIM_ADVICE = (
    "Repair the field (never delete the item: it holds the last slot claimed for the entry, "
    "without which a new leader could send that slot again)"
)


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


def claim_fields(
    slot: datetime, *, runs: int, token: int, environment: str, claim_id: str, epoch: int = 0
) -> dict[str, str]:
    """The fields of a claim item holding one claim (less ``fence``, which only fencing sets,
    and ``acked``, which a claim carries when its tenure has one)."""
    return {
        "slot": str(slot_millis(slot)),
        "runs": str(runs),
        "token": str(token),
        "environment": environment,
        "claim_id": claim_id,
        "epoch": str(epoch),
    }


def acked_text(acked: Acked) -> str:
    """The stored form of an acknowledgement: ``TOKEN/EPOCH``."""
    return f"{acked.token}/{acked.epoch}"


def doubt_key(entry: str, slot: datetime) -> str:
    """The key of a doubt within its lock: ``ENTRY#SLOT-MILLIS`` (sorted by entry)."""
    return f"{entry}#{slot_millis(slot)}"


def doubt_fields(doubt: Doubt) -> dict[str, str]:
    return {
        "entry": doubt.entry,
        "slot": str(slot_millis(doubt.slot)),
        "token": str(doubt.token),
        "environment": doubt.environment,
        "reason": doubt.reason,
        "noticed_at": doubt.noticed_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "noticed_by": doubt.noticed_by,
    }


def doubt_from_fields(name: str, fields: Mapping[str, str]) -> Doubt:
    reader = FieldReader(
        f"in-doubt slot of lock {name!r}",
        fields,
        "Acknowledge it with `handover ack-in-doubt` after checking the run by hand",
    )
    environment = reader.environment("environment")
    if environment is None:
        reader.fail("environment", None, "an environment label such as 'ecs'")
    return Doubt(
        entry=reader.text("entry"),
        slot=slot_from_millis(reader.integer("slot")),
        token=reader.integer("token"),
        environment=environment,
        reason=reader.text("reason"),
        noticed_at=reader.time("noticed_at") or EPOCH,
        noticed_by=reader.text("noticed_by"),
    )


def claim_from_fields(name: str, entry: str, fields: Mapping[str, str]) -> EntryClaim | None:
    """The claim held by entry ``entry``'s claim item of lock ``name``, or None if the item holds
    none yet (an entry fenced but never claimed); CorruptRecord names a field of a wrong shape."""
    if "slot" not in fields:
        return None
    reader = FieldReader(f"claim item of entry {entry!r} of lock {name!r}", fields, CLAIM_ADVICE)
    environment = reader.environment("environment")
    if environment is None:
        reader.fail("environment", None, "an environment label such as 'ecs'")
    return EntryClaim(
        entry=entry,
        slot=slot_from_millis(reader.integer("slot")),
        runs=reader.integer("runs"),
        token=reader.integer("token"),
        environment=environment,
        claim_id=reader.text("claim_id"),
        epoch=reader.integer("epoch", default=0),
        acked=reader.acked("acked"),
    )


def claim_result(
    done: bool,
    stored: EntryClaim | None,
    lost: str | None,
    entry: str,
    slot: datetime,
    claim_id: str,
) -> ClaimResult:
    """The outcome of a claim write, from whether its condition held (``done``), the entry's
    claim as stored (as written if it held, as it was if not) and, when the write was refused
    because this tenure may no longer claim, why (``lost``). Our own earlier write of this claim
    (a retry after a lost answer) counts as claimed, even if a newer tenure fenced the entry
    since: the claim was accepted before the fence, and the new leader saw it as taken."""
    if done or (stored is not None and stored.claim_id == claim_id):
        reason = "" if done else "our earlier attempt stored it"
        return ClaimResult(ClaimOutcome.CLAIMED, entry, slot, stored, reason)
    if lost is not None:
        return ClaimResult(ClaimOutcome.LEASE_LOST, entry, slot, stored, lost)
    return ClaimResult(
        ClaimOutcome.ALREADY_CLAIMED,
        entry,
        slot,
        stored,
        f"slot {slot.isoformat()} is not later than the last claimed slot "
        f"{stored.slot.isoformat() if stored else None} (token {stored.token if stored else None})",
    )


def fence_lost_reason(entry: str, fence: int | None, token: int) -> str | None:
    """Why tenure ``token`` may not claim an entry whose claim item carries ``fence`` (None: no
    item), or None if it may."""
    if fence == token:
        return None
    if fence is None:
        return f"entry {entry!r} was never fenced (no claim item): fence it before claiming"
    if fence > token:
        return (
            f"entry {entry!r} was fenced by token {fence}: a newer leader has started dispatching"
        )
    return f"entry {entry!r} is fenced by token {fence}, not ours ({token}): fence it first"


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
    reader = FieldReader(f"lease record of lock {name!r}", fields, LEASE_ADVICE)
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
        handover_to=reader.environment("handover_to"),
        handover_announced_at=reader.time("handover_announced_at"),
        acked=reader.acked("acked"),
    )


def participant_fields(
    identity: Identity,
    *,
    role: str,
    sequence: int,
    detail: Mapping[str, Any] | None,
    now: float,
) -> dict[str, str]:
    """The stored fields of one heartbeat, less ``expires_at`` and ``joined_at`` (the store
    sets those: expiry from its own clock where it has one, the first heartbeat's time).
    ``now`` is the store's time as the writer knows it (epoch seconds), so a host with a wrong
    clock is not shown as seen an hour ago."""
    return {
        "environment": identity.environment,
        "instance_id": identity.instance_id,
        "role": role,
        "seen_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
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
        reader = FieldReader(
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
    reader = FieldReader(
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


class FieldReader:
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

    def acked(self, field: str) -> Acked | None:
        value = self.fields.get(field)
        if value is None:
            return None
        token, _, epoch = value.partition("/")
        if not (token.isascii() and token.isdigit() and epoch.isascii() and epoch.isdigit()):
            self.fail(field, value, "TOKEN/EPOCH, two whole numbers")
        return Acked(int(token), int(epoch))

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
