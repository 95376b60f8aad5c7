"""The conditions every store write enforces, the same on DynamoDB (moto server) and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
import redis

from beat_handover.beat_lock import keys
from beat_handover.beat_lock.dynamodb import DynamoDBStore, create_table
from beat_handover.beat_lock.errors import ConfigError, CorruptRecord, StoreMissing
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import AuditEvent, ClaimOutcome
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings

pytestmark = pytest.mark.integration

SLOT = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def claim(store, name, identity, token, slot=SLOT, claim_id="c1", entry="letters"):
    return store.claim(name, entry, slot, identity=identity, token=token, claim_id=claim_id)


def fence(store, name, identity, token, entries=("letters",), everything=True):
    return store.fence(name, entries, identity=identity, token=token, everything=everything)


def lead(store, name, identity, version, entries=("letters",)):
    """Acquire a free lease and fence ``entries``, as a leader does before its first claim."""
    token = store.acquire(name, identity, expected_version=None, new_version=version)
    assert fence(store, name, identity, token, entries) == {}
    return token


def test_token_rises_by_one_per_holder_and_never_goes_back(store, lock_name, paas, ecs):
    assert store.read(lock_name) is None
    assert store.acquire(lock_name, paas, expected_version=None, new_version="v1") == 1
    assert store.acquire(lock_name, ecs, expected_version=None, new_version="v2") is None
    assert store.release(lock_name, paas, 1, new_version="v3") is True
    released = store.read(lock_name)
    assert (released.holder, released.token, released.version) == (None, 1, "v3")
    assert released.tenure_ended_at is not None
    assert store.acquire(lock_name, ecs, expected_version=None, new_version="v4") == 2
    assert store.acquire(lock_name, paas, expected_version="v4", new_version="v5") == 3
    record = store.read(lock_name)
    assert (record.holder, record.token, record.renewals) == (paas, 3, 0)


def test_takeover_needs_the_version_the_standby_watched(store, lock_name, paas, ecs):
    store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    assert store.renew(lock_name, paas, 1, new_version="v2") is True
    assert store.acquire(lock_name, ecs, expected_version="v1", new_version="v3") is None
    assert store.acquire(lock_name, ecs, expected_version="v2", new_version="v3") == 2


def test_only_the_holder_with_its_token_renews_or_releases(store, lock_name, paas, ecs):
    store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    assert store.renew(lock_name, paas, 2, new_version="x") is False
    assert store.renew(lock_name, ecs, 1, new_version="x") is False
    assert store.release(lock_name, ecs, 1, new_version="x") is False
    assert store.renew(lock_name, paas, 1, new_version="v2") is True
    assert store.renew(lock_name, paas, 1, new_version="v3") is True
    assert store.read(lock_name).renewals == 2


def test_a_retried_write_that_already_happened_is_recognised(store, lock_name, paas):
    assert store.acquire(lock_name, paas, expected_version=None, new_version="v1") == 1
    assert store.acquire(lock_name, paas, expected_version=None, new_version="v1") == 1
    assert store.renew(lock_name, paas, 1, new_version="v2") is True
    store.release(lock_name, paas, 1, new_version="v3")
    assert store.release(lock_name, paas, 1, new_version="v3") is True
    assert store.read(lock_name).token == 1


def test_a_former_holders_claims_are_refused_once_the_new_leader_has_fenced(
    store, lock_name, paas, ecs, backend
):
    """The proof of fencing, on the moto server and redis-server (test_lease_races.py runs it
    on dynalite): the old holder keeps believing it leads, and claims on."""
    old = lead(store, lock_name, paas, "v1", entries=("letters", "invoices", "paas-only"))
    for entry in ("letters", "invoices", "paas-only"):
        assert claim(store, lock_name, paas, old, entry=entry).claimed
    store.pin(lock_name, "ecs", expected_token=old, new_version="p1", end_tenure=True)
    new = store.acquire(lock_name, ecs, expected_version=None, new_version="v2")
    assert new == old + 2
    # ecs's schedule has no paas-only: the fence covers every entry with a claim item.
    fenced = fence(store, lock_name, ecs, new, entries=("letters", "invoices", "ecs-only"))
    assert {entry: (c.slot, c.token) for entry, c in fenced.items()} == {
        "letters": (SLOT, old),
        "invoices": (SLOT, old),
        "paas-only": (SLOT, old),
    }
    later = SLOT + timedelta(minutes=1)
    for entry in ("letters", "invoices", "paas-only", "ecs-only"):
        refused = claim(store, lock_name, paas, old, slot=later, claim_id="stale", entry=entry)
        assert refused.outcome is ClaimOutcome.LEASE_LOST, entry
    reason = claim(store, lock_name, paas, old, slot=later, claim_id="stale").reason
    assert reason == (
        f"entry 'letters' was fenced by token {new}: a newer leader has started dispatching"
        if backend == "dynamodb"
        else f"the holder is {ecs} (token {new}), not us"
    )
    # An entry paas fences now (new to its schedule) is refused too: its fence ends with a
    # write conditional on the lease, which paas no longer holds.
    assert fence(store, lock_name, paas, old, entries=("late-entry",), everything=False) is None
    assert claim(store, lock_name, ecs, new, slot=later, claim_id="c2").claimed
    assert {e: c.token for e, c in store.last_claims(lock_name).items()} == {
        "letters": new,
        "invoices": old,
        "paas-only": old,
    }


def test_a_fence_of_a_tenure_that_lost_the_lease_reports_nothing(store, lock_name, paas, ecs):
    assert fence(store, lock_name, paas, 1) is None  # never acquired
    old = lead(store, lock_name, paas, "v1")
    store.release(lock_name, paas, old, new_version="v2")
    assert fence(store, lock_name, paas, old) is None  # released
    new = store.acquire(lock_name, ecs, expected_version=None, new_version="v3")
    assert fence(store, lock_name, ecs, new) == {}
    assert fence(store, lock_name, ecs, new - 1) is None  # an older token of the holder
    store.pin(lock_name, "paas", expected_token=new, new_version="p1", end_tenure=False)
    assert fence(store, lock_name, ecs, new) is None  # pinned away, tenure not even ended


def test_the_same_slot_claimed_twice_by_the_same_holder_counts_once(store, lock_name, paas):
    lead(store, lock_name, paas, "v1")
    first = claim(store, lock_name, paas, 1, claim_id="c1")
    assert first.outcome is ClaimOutcome.CLAIMED
    assert (first.last.slot, first.last.runs, first.last.token, first.last.claim_id) == (
        SLOT,
        1,
        1,
        "c1",
    )
    retried = claim(store, lock_name, paas, 1, claim_id="c1")  # our lost answer, retried
    assert (retried.outcome, retried.last.runs) == (ClaimOutcome.CLAIMED, 1)
    again = claim(store, lock_name, paas, 1, claim_id="c2")  # a second attempt at the slot
    assert (again.outcome, again.last.runs) == (ClaimOutcome.ALREADY_CLAIMED, 1)
    earlier = claim(store, lock_name, paas, 1, slot=SLOT - timedelta(minutes=1), claim_id="c3")
    assert earlier.outcome is ClaimOutcome.ALREADY_CLAIMED
    later = claim(store, lock_name, paas, 1, slot=SLOT + timedelta(milliseconds=1), claim_id="c4")
    assert (later.outcome, later.last.runs) == (ClaimOutcome.CLAIMED, 2)
    assert store.read_claim(lock_name, "letters") == later.last
    assert store.read_claim(lock_name, "invoices") is None


def test_slots_are_kept_per_entry_with_any_entry_name(store, lock_name, paas):
    names = ["letters", "send:letters/daily", "  spaced  ", "ünïcode-✉", "a#b", "x" * 1000]
    lead(store, lock_name, paas, "v1", entries=names)
    for i, entry in enumerate(names):
        result = claim(store, lock_name, paas, 1, claim_id=f"c{i}", entry=entry)
        assert result.outcome is ClaimOutcome.CLAIMED, entry
    claims = store.last_claims(lock_name)
    assert sorted(claims) == sorted(names)
    assert {c.slot for c in claims.values()} == {SLOT}
    assert fence(store, lock_name, paas, 1, entries=()) == claims


def test_the_lease_record_stays_the_same_size_however_many_entries_are_claimed(
    store, lock_name, paas, stored_lease_fields
):
    names = [f"app.tasks.entry_{i:04d}" for i in range(300)]
    lead(store, lock_name, paas, "v1", entries=names)
    before = stored_lease_fields(lock_name)
    for i, entry in enumerate(names):
        claim(store, lock_name, paas, 1, claim_id=f"c{i}", entry=entry)
    assert stored_lease_fields(lock_name) == before
    assert len(store.last_claims(lock_name)) == len(names)


def test_a_dynamodb_entry_name_longer_than_a_sort_key_is_refused_by_name(
    moto_server, lock_table, lock_name, paas
):
    store = DynamoDBStore(
        parse_lock_url(f"dynamodb://{lock_table}?region=eu-west-2"), LeaseTimings()
    )
    token = store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    with pytest.raises(ConfigError) as caught:
        fence(store, lock_name, paas, token, entries=("é" * 600,))
    assert str(caught.value) == (
        f"schedule entry name {'é' * 80!r} is 1200 bytes long; a DynamoDB lock table keeps each "
        "entry's claims under its name, which must be 1 to 1024 bytes (UTF-8): rename the entry"
    )


def test_a_pin_keeps_out_the_other_environment(store, lock_name, paas, ecs, backend):
    assert (
        store.pin(lock_name, "ecs", expected_token=None, new_version="p1", end_tenure=False).token
        == 0
    )
    assert store.acquire(lock_name, paas, expected_version=None, new_version="v1") is None
    assert lead(store, lock_name, ecs, "v2") == 1
    assert (
        store.pin(lock_name, "paas", expected_token=0, new_version="p2", end_tenure=True) is None
    )  # token moved on since the caller read it
    pinned = store.pin(lock_name, "paas", expected_token=1, new_version="p3", end_tenure=False)
    assert (pinned.pin, pinned.holder, pinned.token, pinned.version) == ("paas", ecs, 1, "p3")
    assert store.renew(lock_name, ecs, 1, new_version="v3") is False  # pinned away: loses it
    assert fence(store, lock_name, ecs, 1) is None
    # Redis checks the lease on every claim; on DynamoDB ecs's fenced entries stay claimable
    # until its next renewal is refused (it then stops) or paas fences them.
    result = claim(store, lock_name, ecs, 1)
    if backend == "redis":
        assert result.reason == "the lease is pinned to 'paas', not 'ecs'"
    else:
        assert result.claimed


def test_a_pin_that_ends_the_tenure_does_it_in_the_same_write(store, lock_name, paas, ecs):
    lead(store, lock_name, paas, "v1")
    ended = store.pin(lock_name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    assert (ended.pin, ended.holder, ended.token, ended.version) == ("ecs", None, 2, "p1")
    assert fence(store, lock_name, paas, 1) is None
    assert lead(store, lock_name, ecs, "v2") == 3
    assert claim(store, lock_name, paas, 1).outcome is ClaimOutcome.LEASE_LOST
    kept = store.pin(lock_name, "ecs", expected_token=3, new_version="p2", end_tenure=True)
    assert (kept.holder, kept.token) == (ecs, 3)  # the holder is inside the pin: untouched
    unpinned = store.pin(lock_name, None, expected_token=None, new_version="p3", end_tenure=True)
    assert (unpinned.pin, unpinned.holder, unpinned.token) == (None, ecs, 3)


def test_a_fallback_takes_a_pinned_lease_only_at_the_version_that_went_unchanged(
    store, lock_name, paas, ecs
):
    assert store.acquire(lock_name, ecs, expected_version=None, new_version="v1") == 1
    store.pin(lock_name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    assert store.acquire(lock_name, paas, expected_version="p1", new_version="v2") is None
    assert (
        store.acquire(lock_name, paas, expected_version="v1", new_version="v2", take_pin=True)
        is None
    )  # the pin write changed the version since
    assert (
        store.acquire(lock_name, paas, expected_version="p1", new_version="v3", take_pin=True) == 2
    )
    record = store.read(lock_name)
    assert (record.pin, record.holder, record.token, record.version) == ("paas", paas, 2, "v3")
    assert store.renew(lock_name, ecs, 1, new_version="v4") is False
    assert store.renew(lock_name, paas, 2, new_version="v5") is True


def test_an_announcement_changes_nothing_fencing_or_takeover_rely_on(store, lock_name, paas, ecs):
    assert store.announce(lock_name, "ecs", expected_token=None) is None  # no record: not made
    assert store.read(lock_name) is None
    store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    assert store.announce(lock_name, "ecs", expected_token=0) is None  # token moved on
    before = store.read(lock_name)
    announced = store.announce(lock_name, "ecs", expected_token=1)
    assert (
        announced.handover_to,
        announced.token,
        announced.holder,
        announced.pin,
        announced.version,
    ) == ("ecs", 1, paas, None, "v1")
    assert announced.handover_announced_at >= before.renewed_at
    assert store.read(lock_name) == announced
    assert store.read(lock_name, consistent=False) == announced
    assert store.renew(lock_name, paas, 1, new_version="v2") is True
    assert fence(store, lock_name, paas, 1) == {}
    assert claim(store, lock_name, paas, 1).outcome is ClaimOutcome.CLAIMED
    assert store.read(lock_name).handover_to == "ecs"
    # A standby that watched version v2 takes over exactly as without the announcement.
    store.announce(lock_name, "ecs", expected_token=1)
    assert store.acquire(lock_name, ecs, expected_version="v2", new_version="v3") == 2
    withdrawn = store.announce(lock_name, None, expected_token=None)
    assert (withdrawn.handover_to, withdrawn.handover_announced_at) == (None, None)
    assert (withdrawn.token, withdrawn.holder, withdrawn.version) == (2, ecs, "v3")


def test_a_pin_clears_the_announcement(store, lock_name, paas):
    store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    store.announce(lock_name, "ecs", expected_token=1)
    pinned = store.pin(lock_name, "ecs", expected_token=1, new_version="p1", end_tenure=True)
    assert (pinned.handover_to, pinned.handover_announced_at, pinned.token) == (None, None, 2)
    assert store.read(lock_name) == pinned
    store.announce(lock_name, "paas", expected_token=2)
    assert (
        store.pin(
            lock_name, None, expected_token=None, new_version="p2", end_tenure=False
        ).handover_to
        is None
    )


def test_heartbeats_list_the_living_oldest_first(store, lock_name, paas, ecs):
    store.heartbeat(
        lock_name,
        paas,
        role="leader",
        ttl_seconds=30,
        sequence=1,
        detail={"version": "1.2", "pid": 7},
    )
    store.heartbeat(lock_name, ecs, role="standby", ttl_seconds=30, sequence=1)
    store.heartbeat(
        lock_name,
        paas,
        role="leader",
        ttl_seconds=30,
        sequence=2,
        detail={"version": "1.2", "pid": 7},
    )
    found = store.participants(lock_name)
    assert [(p.identity, p.role, p.sequence) for p in found] == [
        (paas, "leader", 2),
        (ecs, "standby", 1),
    ]
    assert found[0].detail == {"version": "1.2", "pid": 7}
    assert found[0].expires_at > found[0].seen_at
    store.leave(lock_name, paas)
    assert [p.identity for p in store.participants(lock_name)] == [ecs]


def test_expired_heartbeats_are_not_listed_before_the_store_deletes_them(
    store, lock_name, paas, ecs
):
    store.heartbeat(lock_name, paas, role="standby", ttl_seconds=-5, sequence=1)  # long gone
    store.heartbeat(lock_name, ecs, role="standby", ttl_seconds=30, sequence=1)
    assert [p.identity for p in store.participants(lock_name)] == [ecs]


def test_audit_events_come_back_newest_first(store, lock_name):
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for minute in range(5):
        store.record_event(
            lock_name,
            AuditEvent(
                at=start + timedelta(minutes=minute),
                kind="pin",
                actor="alice",
                host="laptop",
                result="ok",
                detail={"to": "ecs", "n": minute},
            ),
        )
    events = store.events(lock_name, limit=3)
    assert [e.detail["n"] for e in events] == [4, 3, 2]
    assert (events[0].kind, events[0].actor, events[0].at) == (
        "pin",
        "alice",
        start + timedelta(minutes=4),
    )
    assert store.events(f"{lock_name}-other") == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("token", "-1", "field 'token' is '-1', expected a whole number of at least 0"),
        ("version", "", "field 'version' is '', expected a non-empty string"),
        (
            "holder_env",
            "Not An Env",
            "field 'holder_env' is 'Not An Env', expected an environment label such as 'ecs'",
        ),
        ("holder_id", "", "field 'holder_id' is '', expected a non-empty string"),
        ("pin", "ECS!", "field 'pin' is 'ECS!', expected an environment label such as 'ecs'"),
        ("renewed_at", "yesterday", "field 'renewed_at' is 'yesterday', expected an ISO-8601 time"),
        (
            "handover_to",
            "",
            "field 'handover_to' is '', expected an environment label such as 'ecs'",
        ),
        (
            "handover_announced_at",
            "now",
            "field 'handover_announced_at' is 'now', expected an ISO-8601 time",
        ),
    ],
)
def test_a_record_of_the_wrong_shape_is_named_field_and_value(
    store, lock_name, paas, write_raw_field, field, value, expected
):
    lead(store, lock_name, paas, "v1")
    claim(store, lock_name, paas, 1)
    write_raw_field(lock_name, field, value)
    with pytest.raises(CorruptRecord) as caught:
        store.read(lock_name)
    assert f"lease record of lock {lock_name!r}: {expected}" in str(caught.value)
    assert "never delete the record" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("slot", "soon", "field 'slot' is 'soon', expected a whole number of at least 0"),
        ("runs", "-2", "field 'runs' is '-2', expected a whole number of at least 0"),
        ("environment", "PaaS", "field 'environment' is 'PaaS', expected an environment label"),
        ("claim_id", "", "field 'claim_id' is '', expected a non-empty string"),
    ],
)
def test_a_claim_of_the_wrong_shape_is_named_field_and_value(
    store, lock_name, paas, write_raw_claim_field, field, value, expected
):
    lead(store, lock_name, paas, "v1")
    claim(store, lock_name, paas, 1)
    write_raw_claim_field(lock_name, "letters", field, value)
    for read in (
        lambda: store.read_claim(lock_name, "letters"),
        lambda: store.last_claims(lock_name),
        lambda: fence(store, lock_name, paas, 1),
    ):
        with pytest.raises(CorruptRecord) as caught:
            read()
        assert f"claim item of entry 'letters' of lock {lock_name!r}: {expected}" in str(
            caught.value
        )
        assert "never delete the item" in str(caught.value)


def test_a_missing_table_is_a_clear_error(moto_server, unique_name):
    store = DynamoDBStore(
        parse_lock_url(f"dynamodb://{unique_name}?region=eu-west-2"), LeaseTimings()
    )
    expected = (
        f"DynamoDB table {unique_name!r} does not exist in region eu-west-2: create it "
        "with `handover init` (beat_handover.beat_lock.dynamodb.create_table), or fix the table in "
        "beat_lock_url"
    )
    for attempt in (store.ping, lambda: store.read("beat")):
        with pytest.raises(StoreMissing) as caught:
            attempt()
        assert str(caught.value) == expected


def test_create_table_is_idempotent_on_demand_with_ttl(moto_server, unique_name):
    assert create_table(unique_name, region="eu-west-2") is True
    assert create_table(unique_name, region="eu-west-2") is False
    client = boto3.client("dynamodb", region_name="eu-west-2")
    table = client.describe_table(TableName=unique_name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=unique_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_a_dynamodb_attribute_of_a_type_we_never_write_is_named(
    moto_server, lock_table, lock_name, paas
):
    store = DynamoDBStore(
        parse_lock_url(f"dynamodb://{lock_table}?region=eu-west-2"), LeaseTimings()
    )
    store.acquire(lock_name, paas, expected_version=None, new_version="v1")
    boto3.client("dynamodb").update_item(
        TableName=lock_table,
        Key={"pk": {"S": keys.partition(keys.LEASE, lock_name)}, "sk": {"S": keys.LEASE_SORT_KEY}},
        UpdateExpression="SET renewals = :v",
        ExpressionAttributeValues={":v": {"BOOL": True}},
    )
    with pytest.raises(CorruptRecord) as caught:
        store.read(lock_name)
    assert str(caught.value).startswith(
        f"lease record of lock {lock_name!r}: field 'renewals' is {{'BOOL': True}}, expected a "
        "string or a number"
    )


def test_a_redis_key_of_another_type_is_a_corrupt_record(redis_url, lock_name, paas):
    client = redis.Redis.from_url(redis_url)
    client.set(keys.redis_key(lock_name, "lease"), "not a hash")
    client.close()
    store = open_store(parse_lock_url(redis_url))
    for attempt in (
        lambda: store.read(lock_name),
        lambda: store.acquire(lock_name, paas, expected_version=None, new_version="v1"),
    ):
        with pytest.raises(CorruptRecord) as caught:
            attempt()
        assert str(caught.value).startswith(
            f"a key of lock {lock_name!r} in Redis at {redis_url} (beat_lock:{{{lock_name}}}:*) "
            "holds a value of another type (WRONGTYPE"
        )


def test_lock_names_lists_the_locks_with_a_lease_record(store, lock_name, paas):
    other = f"{lock_name}-other"
    for name in (lock_name, other):
        store.acquire(name, paas, expected_version=None, new_version="v1")
    # Items of other kinds, even one whose key ends like a lease key, name no lock.
    store.heartbeat(f"{lock_name}-heartbeat-only", paas, role="standby", ttl_seconds=60, sequence=1)
    store.mark_run(lock_name, "odd:lease", ttl_seconds=60)
    names = store.lock_names()
    assert names == sorted(names)
    assert {lock_name, other} <= set(names)
    assert not [
        name for name in names if name.startswith(lock_name) and name not in (lock_name, other)
    ]
