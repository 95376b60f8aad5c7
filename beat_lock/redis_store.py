"""The Redis backend: every write is one Lua script, so every condition is checked atomically.

Keys of lock NAME are in :mod:`beat_handover.beat_lock.keys`: the lease record is a hash, the
claims another hash (entry -> the entry's last claim as JSON, fields as in
:mod:`beat_handover.beat_lock.layout`), so a poll or renewal touches the record alone and a claim
one field of the claims, whatever the schedule's size. The braces in the keys are a cluster hash
tag, so one script may read the lease record and write a claim: a claim is refused as soon as the
lease's token is not the claimer's, with no fence per entry. Fencing (at the start of a tenure)
converts a lock still in the legacy layout (:mod:`beat_handover.beat_lock.legacy`) and reads the
claims; a claim is refused until a lock has been converted, so no claim ever ignores a legacy one.

Replication: Redis acknowledges a write before its replicas have it, so a failover can lose the
last claims and lease writes. With ``LockLocation.wait_replicas`` (the setting
``beat_lock_redis_wait_replicas``) every lease write and claim is followed, in the same pipeline,
by ``WAIT``; fewer replicas than asked within the timeout raise StoreUnavailable, so the write
counts as unanswered and nothing is published on it.


Every script answers with the server's ``TIME`` beside its result, and a poll's read sends
``TIME`` in the same pipeline, so the store's clock
(:class:`~beat_handover.beat_lock.store_clock.StoreClock`) is read on every renewal, poll and
claim at no extra round trip; it judges this host's wall clock (fire times), and expires
heartbeats. No lease expiry uses it.
A script whose condition failed returns what it saw, so the store tells in the same round trip
whether the failure was our own earlier attempt (redis-py retried a command whose answer was
lost: same ``version`` or ``claim_id``), a lost lease or a slot already claimed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterator, Mapping
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

from beat_handover.beat_lock import keys
from beat_handover.beat_lock.errors import ConfigError, CorruptRecord, StoreError, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import (
    CLAIM_ADVICE,
    acked_text,
    claim_fields,
    claim_from_fields,
    claim_result,
    doubt_fields,
    doubt_from_fields,
    doubt_key,
    event_fields,
    event_from_fields,
    holder_matches,
    lease_lost_reason,
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
from beat_handover.beat_lock.location import LockLocation, redact
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

AUDIT_MAX_EVENTS = 1000
NOT_CONVERTED = "this lock has not been fenced since its claims moved to claim items: fence first"
RETRIES = 1  # one more attempt after a dropped connection (a restarted server, a stale socket)
# The scripts that change what a lease decision or a claim reads: with
# beat_lock_redis_wait_replicas each is confirmed by WAIT before its answer counts.
REPLICATED = frozenset(
    {"acquire", "renew", "release", "acknowledge", "claim", "fence", "pin", "announce"}
)

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
local env, id, token, new, now, acked = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not holds(env, id, token) then return refused() end
redis.call('HSET', k, 'version', new, 'renewed_at', now)
if acked ~= '' then redis.call('HSET', k, 'acked', acked) end
redis.call('HINCRBY', k, 'renewals', 1)
return {1}
"""
)

# ARGV: the acknowledgement's token and epoch. Raised only, never lowered; never creates the
# record.
ACKNOWLEDGE = (
    LEASE_HELPERS
    + """
local token, epoch = tonumber(ARGV[1]), tonumber(ARGV[2])
if not get('version') then return {0} end
local stored = get('acked')
if stored then
  local t, e = string.match(stored, '^(%d+)/(%d+)$')
  t, e = tonumber(t), tonumber(e)
  if t > token or (t == token and e >= epoch) then return {0} end
end
redis.call('HSET', k, 'acked', ARGV[1] .. '/' .. ARGV[2])
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

# KEYS: lease hash, claims hash. ARGV[7]: the guard field, present once the lock is converted;
# ARGV[8], ARGV[9]: the claim's number in its tenure, the tenure's acknowledgement ('' if none).
# Answers {1, claim} (claimed), {0, stored claim or ''} (not later), {2, stored, lease fields}.
CLAIM = (
    LEASE_HELPERS
    + """
local env, id, token, slot, claim_id, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local epoch, acked = ARGV[8], ARGV[9]
local stored = redis.call('HGET', KEYS[2], entry)
if not (holds(env, id, token) and get(ARGV[7])) then
  return {2, stored or '', redis.call('HGETALL', k)}
end
local last = stored and cjson.decode(stored)
if last and tonumber(last.slot) >= tonumber(slot) then return {0, stored} end
local fields = {slot = slot, runs = tostring((last and tonumber(last.runs) or 0) + 1),
  token = token, environment = env, claim_id = claim_id, epoch = epoch}
if acked ~= '' then fields.acked = acked end
local claim = cjson.encode(fields)
redis.call('HSET', KEYS[2], entry, claim)
return {1, claim}
"""
)

# KEYS: lease hash, claims hash. ARGV[5], a JSON plan: legacy claims to copy (entry -> claim
# JSON; the later slot wins), legacy fields to remove, the entries to report (all if
# ARGV[4] == '1'). Answers {1, entry, claim, entry, claim...} or {0} if the lease is not held.
FENCE = (
    LEASE_HELPERS
    + """
local env, id, token, everything, plan = ARGV[1], ARGV[2], ARGV[3], ARGV[4], cjson.decode(ARGV[5])
if not holds(env, id, token) then return {0} end
for entry, claim in pairs(plan.legacy) do
  local stored = redis.call('HGET', KEYS[2], entry)
  if not stored or tonumber(cjson.decode(stored).slot) < tonumber(cjson.decode(claim).slot) then
    redis.call('HSET', KEYS[2], entry, claim)
  end
end
for _, field in ipairs(plan.remove) do redis.call('HDEL', k, field) end
redis.call('HSET', k, ARGV[6], ARGV[7])
local found = {1}
if everything == '1' then
  for _, value in ipairs(redis.call('HGETALL', KEYS[2])) do table.insert(found, value) end
  return found
end
for _, entry in ipairs(plan.entries) do
  local claim = redis.call('HGET', KEYS[2], entry)
  if claim then table.insert(found, entry); table.insert(found, claim) end
end
return found
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


def timed(script: str) -> str:
    """``script`` answering ``{TIME, its own answer}``: the server's clock on every answer."""
    return f"local function body()\n{script}\nend\nreturn {{redis.call('TIME'), body()}}\n"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _flat_fields(flat: list) -> dict[str, str]:
    """An HGETALL answer as a dict of text."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


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

    def __init__(
        self, location: LockLocation, timings: LeaseTimings, *, clock: StoreClock | None = None
    ) -> None:
        if location.backend != "redis":
            raise ConfigError(f"RedisStore needs a redis:// location, got {location.url!r}")
        self.location = location
        per_attempt = timings.request_timeout_seconds / (RETRIES + 1)
        self._client = redis.Redis.from_url(
            location.url,
            password=location.password,
            # A write with WAIT may take its wait on top of the request itself.
            socket_timeout=per_attempt
            + (location.wait_timeout_seconds if location.wait_replicas else 0),
            socket_connect_timeout=per_attempt,
            retry=Retry(NoBackoff(), RETRIES),
        )
        scripts = {
            "acquire": ACQUIRE,
            "renew": RENEW,
            "acknowledge": ACKNOWLEDGE,
            "release": RELEASE,
            "claim": CLAIM,
            "fence": FENCE,
            "pin": PIN,
            "announce": ANNOUNCE,
            "heartbeat": HEARTBEAT,
            "leave": LEAVE,
            "participants": PARTICIPANTS,
            "record_event": RECORD_EVENT,
        }
        self._scripts = {
            name: self._client.register_script(timed(text)) for name, text in scripts.items()
        }
        self._clock = clock or StoreClock()  # tests give one with a shifted wall clock

    def store_clock(self) -> StoreClock:
        return self._clock

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
            text = str(exc)
            if "WRONGTYPE" in text:  # a pipeline's error names its command first: left out
                raise CorruptRecord(
                    f"a key of lock {name!r} in Redis at {where} ({keys.redis_key(name, '*')}) "
                    f"holds a value of another type ({text[text.index('WRONGTYPE') :]}); it was "
                    "not written by beat_lock"
                ) from None
            if "DB index is out of range" in str(exc):
                raise ConfigError(
                    f"Redis at {where} has no such database ({exc}); fix the /DB in beat_lock_url"
                ) from None
            raise StoreError(f"Redis at {where}, lock {name!r}: {exc}") from None

    def _run(self, script: str, name: str, keys: list[str], args: list[Any]) -> Any:
        sent = self._clock.sent()
        if script in REPLICATED:
            stamp, answer = self._write(
                script,
                name,
                lambda client: self._scripts[script](keys=keys, args=args, client=client),
            )
        else:
            with self._mapped(name):
                stamp, answer = self._scripts[script](keys=keys, args=args)
        self._clock.observe_redis_time(sent, stamp)
        return answer

    def _write(self, what: str, name: str, command: Callable[[Any], Any]) -> Any:
        """``command(client)``'s answer; with wait_replicas, only once that many replicas have
        it. WAIT counts the replicas that have every earlier write of its own connection, so it
        goes in one pipeline with the command: one round trip, on one connection."""
        wanted = self.location.wait_replicas
        if wanted == 0:
            with self._mapped(name):
                return command(self._client)
        timeout_ms = max(1, round(self.location.wait_timeout_seconds * 1000))
        with self._mapped(name), self._client.pipeline(transaction=False) as pipe:
            command(pipe)
            pipe.execute_command("WAIT", wanted, timeout_ms)
            answer, replicas = pipe.execute()
        if replicas < wanted:
            raise StoreUnavailable(
                f"Redis at {redact(self.location.url)}: the {what} of lock {name!r} reached "
                f"{replicas} of the {wanted} replica(s) beat_lock_redis_wait_replicas asks for "
                f"within {self.location.wait_timeout_seconds:g}s, so a failover could lose it; "
                "it is treated as unanswered (asked again, nothing published on it meanwhile)"
            )
        return answer

    def _lease_write(self, script: str, name: str, args: list[Any]) -> tuple[bool, list]:
        ok, *rest = self._run(script, name, [lease_key(name)], args)
        return ok == 1, rest

    def _record(self, name: str, flat: list) -> LeaseRecord | None:
        fields = _flat_fields(flat)
        return record_from_fields(name, fields) if fields else None

    def _lease_fields(self, name: str) -> dict[str, str]:
        with self._mapped(name):
            stored = self._client.hgetall(lease_key(name))
        return {_text(key): _text(value) for key, value in stored.items()}

    def read(self, name: str, *, consistent: bool = True) -> LeaseRecord | None:
        # One primary: every read is consistent. TIME rides in the same round trip.
        with self._mapped(name):
            sent = self._clock.sent()
            stored, stamp = (
                self._client.pipeline(transaction=False).hgetall(lease_key(name)).time().execute()
            )
        self._clock.observe_redis_time(sent, stamp)
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
            raise ConfigError(
                "a fallback (take_pin=True) needs expected_version, the record version that "
                "went unchanged, got None"
            )
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

    def renew(
        self,
        name: str,
        identity: Identity,
        token: int,
        *,
        new_version: str,
        acked: Acked | None = None,
    ) -> bool:
        return self._holder_write("renew", name, identity, token, new_version, acked)

    def release(self, name: str, identity: Identity, token: int, *, new_version: str) -> bool:
        return self._holder_write("release", name, identity, token, new_version)

    def acknowledge(self, name: str, acked: Acked) -> bool:
        done, _ = self._lease_write("acknowledge", name, [str(acked.token), str(acked.epoch)])
        return done

    def _holder_write(
        self,
        script: str,
        name: str,
        identity: Identity,
        token: int,
        new_version: str,
        acked: Acked | None = None,
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
                "" if acked is None else acked_text(acked),
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
        epoch: int = 0,
        acked: Acked | None = None,
    ) -> ClaimResult:
        status, stored, *lease = self._run(
            "claim",
            name,
            [lease_key(name), claims_key(name)],
            [
                identity.environment,
                identity.instance_id,
                str(token),
                slot_millis(slot),
                claim_id,
                entry,
                GUARD_FIELD,
                str(epoch),
                "" if acked is None else acked_text(acked),
            ],
        )
        lost = None
        if status == 2:
            fields = _flat_fields(lease[0])
            record = record_from_fields(name, fields) if fields else None
            lost = (
                NOT_CONVERTED
                if holder_matches(record, identity, token)
                else lease_lost_reason(record, identity, token)
            )
        claim = self._claim(name, entry, stored)
        return claim_result(status == 1, claim, lost, entry, slot, claim_id)

    def _claim(self, name: str, entry: str, stored: bytes | str) -> EntryClaim | None:
        if not stored:
            return None
        what = f"claim item of entry {entry!r} of lock {name!r}"
        return claim_from_fields(name, entry, _json_fields(stored, what, CLAIM_ADVICE))

    def read_claim(self, name: str, entry: str) -> EntryClaim | None:
        with self._mapped(name):
            stored = self._client.hget(claims_key(name), entry)
        return self._claim(name, entry, stored or "")

    def _claims(self, name: str, flat: list) -> dict[str, EntryClaim]:
        found = {}
        for i in range(0, len(flat), 2):
            entry = _text(flat[i])
            claim = self._claim(name, entry, flat[i + 1])
            if claim is not None:
                found[entry] = claim
        return found

    def last_claims(self, name: str) -> dict[str, EntryClaim]:
        with self._mapped(name):
            stored = self._client.hgetall(claims_key(name))
        flat = [value for pair in stored.items() for value in pair]
        return merged(self._claims(name, flat), legacy_claims(name, self._lease_fields(name)))

    def fence(
        self,
        name: str,
        entries: Collection[str],
        *,
        identity: Identity,
        token: int,
        everything: bool,
    ) -> dict[str, EntryClaim] | None:
        # The legacy fields cannot change once we hold the lease (a legacy claim needs the
        # lease's token), and the script copies them only if we still hold it.
        fields = self._lease_fields(name)
        legacy = legacy_claims(name, fields)
        plan = {
            "legacy": {
                entry: json.dumps(
                    claim_fields(
                        claim.slot,
                        runs=claim.runs,
                        token=claim.token,
                        environment=claim.environment,
                        claim_id=claim.claim_id,
                    ),
                    ensure_ascii=False,
                )
                for entry, claim in legacy.items()
            },
            "remove": legacy_fields(fields),
            "entries": sorted(set(entries) | set(legacy)),
        }
        status, *found = self._run(
            "fence",
            name,
            [lease_key(name), claims_key(name)],
            [
                identity.environment,
                identity.instance_id,
                str(token),
                "1" if everything else "0",
                json.dumps(plan, ensure_ascii=False),
                GUARD_FIELD,
                GUARD_VALUE,
            ],
        )
        return self._claims(name, found) if status == 1 else None

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
        fields = participant_fields(
            identity, role=role, sequence=sequence, detail=detail, now=self._clock.store_now()
        )
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
        key, ttl = keys.redis_key(name, "run", run), math.ceil(ttl_seconds)
        return bool(
            self._write("run mark", name, lambda client: client.set(key, b"1", nx=True, ex=ttl))
        )

    def record_doubt(self, name: str, doubt: Doubt) -> bool:
        field, value = doubt_key(doubt.entry, doubt.slot), json.dumps(doubt_fields(doubt))
        return bool(
            self._write(
                "slot in doubt", name, lambda client: client.hsetnx(doubts_key(name), field, value)
            )
        )

    def doubts(self, name: str) -> list[Doubt]:
        with self._mapped(name):
            stored = self._client.hgetall(doubts_key(name))
        found = [
            doubt_from_fields(
                name,
                _json_fields(
                    raw,
                    f"an in-doubt slot of lock {name!r}",
                    f"remove it from {doubts_key(name)} after checking the run by hand",
                ),
            )
            for raw in stored.values()
        ]
        return sorted(found, key=lambda doubt: (doubt.entry, doubt.slot))

    def clear_doubt(self, name: str, entry: str, slot: datetime) -> bool:
        with self._mapped(name):
            return bool(self._client.hdel(doubts_key(name), doubt_key(entry, slot)))

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

    def lock_names(self) -> list[str]:
        prefix, suffix = keys.redis_key("", "lease").split("{}")
        with self._mapped("(every lock)"):
            found = self._client.scan_iter(match=f"{prefix}{{*}}{suffix}", count=1000)
            # A run mark of an entry whose name ends in ":lease" matches the pattern too; a lock
            # name never holds a brace, so the lease key's own braces tell them apart.
            names = {_text(key)[len(prefix) + 1 : -len(suffix) - 1] for key in found}
        return sorted(name for name in names if "}" not in name)

    def ping(self) -> None:
        with self._mapped("(ping)"):
            self._client.ping()

    def close(self) -> None:
        self._client.close()


def lease_key(name: str) -> str:
    return keys.redis_key(name, "lease")


def claims_key(name: str) -> str:
    return keys.redis_key(name, "claims")


def member_keys(name: str) -> list[str]:
    return [keys.redis_key(name, "members"), keys.redis_key(name, "members", "expiry")]


def doubts_key(name: str) -> str:
    return keys.redis_key(name, "doubts")


def audit_key(name: str) -> str:
    return keys.redis_key(name, "audit")
