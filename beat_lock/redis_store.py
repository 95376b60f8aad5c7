"""The Redis backend: every write is one Lua script, so every condition is checked atomically.

Keys of lock NAME (the braces are a cluster hash tag: all of one lock's keys share a slot):

    beat_lock:{NAME}:lease            hash: the lease record, fields as in
    beat_handover.beat_lock.layout beat_lock:{NAME}:members          hash: instance id -> JSON
    heartbeat beat_lock:{NAME}:members:expiry   sorted set: instance id scored by expiry (server
    time) beat_lock:{NAME}:audit            list: JSON audit events, newest first, trimmed

The scripts read the Redis server's clock only to expire heartbeats; no lease decision uses it.
A script whose condition failed returns the record as it was, so the store tells in the same
round trip whether the failure was our own earlier attempt (redis-py retried a command whose
answer was lost: same ``version`` or ``claim_id``), a lost lease or a slot already claimed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ReadOnlyError,
    RedisError,
)
from redis.retry import Retry

from beat_handover.beat_lock.errors import ConfigError, CorruptRecord, StoreError, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import (
    claim_result,
    event_fields,
    event_from_fields,
    now_iso,
    participant_fields,
    participants_from_rows,
    record_from_fields,
    slot_millis,
)
from beat_handover.beat_lock.location import LockLocation, redact
from beat_handover.beat_lock.record import AuditEvent, ClaimResult, LeaseRecord, Participant
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.beat_lock.unreachable import unreachable

AUDIT_MAX_EVENTS = 1000
RETRIES = 1  # one more attempt after a dropped connection (a restarted server, a stale socket)

# Shared by the lease scripts: KEYS[1] is the lease hash. HGET answers false for a missing field.
LEASE_HELPERS = """
local k = KEYS[1]
local function get(field) return redis.call('HGET', k, field) end
local function pin_allows(env) local pin = get('pin'); return (not pin) or pin == env end
local function holds(env, id, token)
  return get('holder_id') == id and get('holder_env') == env and get('token') == token
    and pin_allows(env)
end
local function refused() return {0, redis.call('HGETALL', k)} end
"""

ACQUIRE = (
    LEASE_HELPERS
    + """
local env, id, expected, new, now, take_pin = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local unchanged = expected ~= '' and get('version') == expected
if take_pin == '1' then
  if not unchanged then return refused() end
  redis.call('HSET', k, 'pin', env)
elseif not (((not get('holder_id')) or unchanged) and pin_allows(env)) then
  return refused()
end
local token = redis.call('HINCRBY', k, 'token', 1)
redis.call('HSET', k, 'version', new, 'holder_env', env, 'holder_id', id, 'renewed_at', now,
  'tenure_started_at', now, 'renewals', 0)
redis.call('HDEL', k, 'tenure_ended_at')
return {1, token}
"""
)

RENEW = (
    LEASE_HELPERS
    + """
local env, id, token, new, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not holds(env, id, token) then return refused() end
redis.call('HSET', k, 'version', new, 'renewed_at', now)
redis.call('HINCRBY', k, 'renewals', 1)
return {1}
"""
)

RELEASE = (
    LEASE_HELPERS
    + """
local env, id, token, new, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if get('holder_id') ~= id or get('token') ~= token then return refused() end
redis.call('HDEL', k, 'holder_env', 'holder_id')
redis.call('HSET', k, 'version', new, 'tenure_ended_at', now)
return {1}
"""
)

CLAIM = (
    LEASE_HELPERS
    + """
local env, id, token, slot, claim_id, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local last = get('slot:' .. entry)
if not (holds(env, id, token) and ((not last) or tonumber(last) < tonumber(slot))) then
  return refused()
end
redis.call('HSET', k, 'slot:' .. entry, slot, 'claim:' .. entry, claim_id,
  'by:' .. entry, token .. '/' .. env)
redis.call('HINCRBY', k, 'runs:' .. entry, 1)
return {1, redis.call('HGETALL', k)}
"""
)

PIN = (
    LEASE_HELPERS
    + """
local pin, expected, new, end_tenure, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if expected ~= '' and tonumber(get('token') or '0') ~= tonumber(expected) then
  return refused()
end
redis.call('HSETNX', k, 'token', 0)
if pin == '' then redis.call('HDEL', k, 'pin') else redis.call('HSET', k, 'pin', pin) end
local holder_env = get('holder_env')
if end_tenure == '1' and holder_env and pin ~= '' and holder_env ~= pin then
  redis.call('HDEL', k, 'holder_env', 'holder_id')
  redis.call('HSET', k, 'tenure_ended_at', now)
  redis.call('HINCRBY', k, 'token', 1)
end
redis.call('HDEL', k, 'handover_to', 'handover_announced_at')
redis.call('HSET', k, 'version', new)
return {1, redis.call('HGETALL', k)}
"""
)

ANNOUNCE = (
    LEASE_HELPERS
    + """
local env, expected, now = ARGV[1], ARGV[2], ARGV[3]
if not get('version') or (expected ~= '' and tonumber(get('token')) ~= tonumber(expected)) then
  return refused()
end
if env == '' then
  redis.call('HDEL', k, 'handover_to', 'handover_announced_at')
else
  redis.call('HSET', k, 'handover_to', env, 'handover_announced_at', now)
end
return {1, redis.call('HGETALL', k)}
"""
)

# KEYS: members hash, expiry sorted set. The server's clock expires heartbeats, nothing else.
MEMBER_HELPERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function prune()
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  end
end
"""

HEARTBEAT = (
    MEMBER_HELPERS
    + """
local id, ttl = ARGV[1], tonumber(ARGV[3])
local beat = cjson.decode(ARGV[2])
beat.joined_at = beat.seen_at
local ok, before = pcall(cjson.decode, redis.call('HGET', KEYS[1], id) or '')
if ok and type(before) == 'table' and before.joined_at then beat.joined_at = before.joined_at end
beat.expires_at = string.format('%.3f', now + ttl)
redis.call('HSET', KEYS[1], id, cjson.encode(beat))
redis.call('ZADD', KEYS[2], now + ttl, id)
prune()
return 1
"""
)

LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

PARTICIPANTS = (
    MEMBER_HELPERS
    + """
prune()
return {tostring(now), redis.call('HVALS', KEYS[1])}
"""
)

RECORD_EVENT = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json_fields(raw: bytes | str, what: str, advice: str) -> dict[str, str]:
    """A stored JSON object of text fields, or CorruptRecord saying what it was instead."""
    try:
        fields = json.loads(raw)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise CorruptRecord(f"{what} is {raw!r}, not a JSON object; {advice}")
    return {str(key): str(value) for key, value in fields.items()}


class RedisStore(LeaseStore):
    """Leases of any number of locks in one Redis database (``redis://HOST:PORT/DB``)."""

    def __init__(self, location: LockLocation, timings: LeaseTimings) -> None:
        if location.backend != "redis":
            raise ConfigError(f"RedisStore needs a redis:// location, got {location.url!r}")
        self.location = location
        per_attempt = timings.request_timeout_seconds / (RETRIES + 1)
        self._client = redis.Redis.from_url(
            location.url,
            password=location.password,
            socket_timeout=per_attempt,
            socket_connect_timeout=per_attempt,
            retry=Retry(NoBackoff(), RETRIES),
        )
        scripts = {
            "acquire": ACQUIRE,
            "renew": RENEW,
            "release": RELEASE,
            "claim": CLAIM,
            "pin": PIN,
            "announce": ANNOUNCE,
            "heartbeat": HEARTBEAT,
            "leave": LEAVE,
            "participants": PARTICIPANTS,
            "record_event": RECORD_EVENT,
        }
        self._scripts = {name: self._client.register_script(text) for name, text in scripts.items()}

    @contextmanager
    def _mapped(self, name: str) -> Iterator[None]:
        """Translate redis-py's errors into the toolkit's, naming the server and the lock."""
        where = redact(self.location.url)
        try:
            yield
        except (AuthenticationError, AuthorizationError) as exc:
            raise ConfigError(
                f"Redis at {where} refused our credentials ({exc}); fix the user and password "
                "in beat_lock_url"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, ReadOnlyError) as exc:
            raise StoreUnavailable(
                unreachable(f"Redis at {where}", exc, names="the host and port in beat_lock_url")
            ) from None
        except RedisError as exc:
            if str(exc).startswith("WRONGTYPE"):
                raise CorruptRecord(
                    f"a key of lock {name!r} in Redis at {where} (beat_lock:{{{name}}}:*) holds "
                    f"a value of another type ({exc}); it was not written by beat_lock"
                ) from None
            if "DB index is out of range" in str(exc):
                raise ConfigError(
                    f"Redis at {where} has no such database ({exc}); fix the /DB in beat_lock_url"
                ) from None
            raise StoreError(f"Redis at {where}, lock {name!r}: {exc}") from None

    def _run(self, script: str, name: str, keys: list[str], args: list[Any]) -> Any:
        with self._mapped(name):
            return self._scripts[script](keys=keys, args=args)

    def _lease_write(self, script: str, name: str, args: list[Any]) -> tuple[bool, list]:
        ok, *rest = self._run(script, name, [lease_key(name)], args)
        return ok == 1, rest

    def _record(self, name: str, flat: list) -> LeaseRecord | None:
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        return record_from_fields(name, fields) if fields else None

    def read(self, name: str) -> LeaseRecord | None:
        with self._mapped(name):
            stored = self._client.hgetall(lease_key(name))
        fields = {_text(key): _text(value) for key, value in stored.items()}
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
        if take_pin and expected_version is None:
            raise ValueError("a fallback (take_pin) needs the version that went unchanged")
        done, rest = self._lease_write(
            "acquire",
            name,
            [
                identity.environment,
                identity.instance_id,
                "" if expected_version is None else expected_version,
                new_version,
                now_iso(),
                "1" if take_pin else "0",
            ],
        )
        if done:
            return int(rest[0])
        record = self._record(name, rest[0])
        return record.token if record is not None and record.version == new_version else None

    def renew(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        return self._holder_write("renew", name, identity, token, new_version)

    def release(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        return self._holder_write("release", name, identity, token, new_version)

    def _holder_write(
        self, script: str, name: str, identity: Identity, token: int, new_version: str
    ) -> bool:
        done, rest = self._lease_write(
            script,
            name,
            [
                identity.environment,
                identity.instance_id,
                str(token),
                new_version,
                now_iso(),
            ],
        )
        if done:
            return True
        record = self._record(name, rest[0])
        return record is not None and record.version == new_version

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
        done, rest = self._lease_write(
            "claim",
            name,
            [
                identity.environment,
                identity.instance_id,
                str(token),
                slot_millis(slot),
                claim_id,
                entry,
            ],
        )
        record = self._record(name, rest[0])
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
        done, rest = self._lease_write(
            "pin",
            name,
            [
                "" if environment is None else environment,
                "" if expected_token is None else str(expected_token),
                new_version,
                "1" if end_tenure else "0",
                now_iso(),
            ],
        )
        record = self._record(name, rest[0])
        if done or (record is not None and record.version == new_version):
            return record
        return None

    def announce(
        self, name: str, environment: str | None, *, expected_token: int | None
    ) -> LeaseRecord | None:
        done, rest = self._lease_write(
            "announce",
            name,
            [
                "" if environment is None else environment,
                "" if expected_token is None else str(expected_token),
                now_iso(),
            ],
        )
        return self._record(name, rest[0]) if done else None

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
        self._run(
            "heartbeat",
            name,
            member_keys(name),
            [identity.instance_id, json.dumps(fields), ttl_seconds],
        )

    def leave(self, name: str, identity: Identity) -> None:
        self._run("leave", name, member_keys(name), [identity.instance_id])

    def participants(self, name: str) -> list[Participant]:
        now, beats = self._run("participants", name, member_keys(name), [])
        rows = [
            _json_fields(
                beat,
                f"a heartbeat of lock {name!r}",
                f"delete it from {member_keys(name)[0]} (its owner writes a new one)",
            )
            for beat in beats
        ]
        return participants_from_rows(name, rows, float(now))

    def mark_run(self, name: str, run: str, *, ttl_seconds: float) -> bool:
        with self._mapped(name):
            return bool(
                self._client.set(
                    f"beat_lock:{{{name}}}:run:{run}", b"1", nx=True, ex=math.ceil(ttl_seconds)
                )
            )

    def record_event(self, name: str, event: AuditEvent) -> None:
        self._run(
            "record_event",
            name,
            [audit_key(name)],
            [json.dumps(event_fields(event)), AUDIT_MAX_EVENTS],
        )

    def events(self, name: str, limit: int = 50) -> list[AuditEvent]:
        with self._mapped(name):
            lines = self._client.lrange(audit_key(name), 0, limit - 1)
        return [
            event_from_fields(
                name,
                _json_fields(
                    line, f"an audit event of lock {name!r}", f"remove it from {audit_key(name)}"
                ),
            )
            for line in lines
        ]

    def ping(self) -> None:
        with self._mapped("(ping)"):
            self._client.ping()

    def close(self) -> None:
        self._client.close()


def lease_key(name: str) -> str:
    return f"beat_lock:{{{name}}}:lease"


def member_keys(name: str) -> list[str]:
    return [f"beat_lock:{{{name}}}:members", f"beat_lock:{{{name}}}:members:expiry"]


def audit_key(name: str) -> str:
    return f"beat_lock:{{{name}}}:audit"
