"""Upgrading a lock from claims on the lease record to claim items, with the old code itself.

The old code is ``beat_lock/`` exactly as it was at ``LEGACY_COMMIT`` (the last commit of main
before claim items), read from this repository's history and imported as ``legacy_beat_lock``:
the only change is that import root. Both run against the same real store, as two environments
would during an upgrade: one still on the old version, one on the new.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from beat_handover.beat_lock.layout import slot_millis
from beat_handover.beat_lock.legacy import GUARD_FIELD
from beat_handover.handover.testing.processes import wait_for
from tests.lease.test_lease_store import SLOT

pytestmark = pytest.mark.integration

LEGACY_COMMIT = "4288df5bd79e9046a14211545eb1c5d5f4991d70"
ROOT = Path(__file__).resolve().parents[2]
LATER = SLOT + timedelta(minutes=1)
LEGACY_MODULES = (
    "errors",
    "identity",
    "layout",
    "lease",
    "location",
    "record",
    "stores",
    "timings",
)


@pytest.fixture(scope="session")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The old ``beat_lock`` package, as ``legacy_beat_lock``, and its modules by name."""
    root = tmp_path_factory.mktemp("legacy")
    package = root / "legacy_beat_lock"
    package.mkdir()
    files = subprocess.run(
        ["git", "ls-tree", "--name-only", LEGACY_COMMIT, "beat_lock/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "beat_lock/layout.py" in files, files
    for path in files:
        source = subprocess.run(
            ["git", "show", f"{LEGACY_COMMIT}:{path}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        text = source.replace("beat_handover.beat_lock", "legacy_beat_lock")
        (package / Path(path).name).write_text(text)
    sys.path.insert(0, str(root))
    try:
        yield SimpleNamespace(
            **{name: importlib.import_module(f"legacy_beat_lock.{name}") for name in LEGACY_MODULES}
        )
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.startswith("legacy_beat_lock")]:
            del sys.modules[name]


@pytest.fixture
def old_store(legacy, store_url):
    store = legacy.stores.open_store(legacy.location.parse_lock_url(store_url))
    yield store
    store.close()


@pytest.fixture
def old_paas(legacy):
    return legacy.identity.Identity.new("paas")


def old_claim(store, name, identity, token, entry, slot, claim_id="old"):
    return store.claim(name, entry, slot, identity=identity, token=token, claim_id=claim_id)


def hand_over(new_store, name, ecs, token):
    """``handover --to ecs``: pin and end the tenure, then the ecs beat acquires."""
    new_store.pin(name, "ecs", expected_token=token, new_version=f"p{token}", end_tenure=True)
    return new_store.acquire(name, ecs, expected_version=None, new_version=f"v{token}")


def test_a_lock_led_by_the_old_version_is_converted_without_losing_a_claim(
    legacy, old_store, old_paas, store, lock_name, ecs, stored_lease_fields
):
    assert old_store.acquire(lock_name, old_paas, expected_version=None, new_version="v1") == 1
    for minute, entry in enumerate(("letters", "invoices", "paas-only")):
        for k in range(minute + 1):
            result = old_claim(
                old_store, lock_name, old_paas, 1, entry, SLOT + timedelta(minutes=k), f"c{k}"
            )
            assert result.claimed
    old = {e: (c.slot, c.runs) for e, c in old_store.read(lock_name).claims.items()}
    # The new version reads a lock the old one leads, and sees its claims.
    assert store.read(lock_name).holder.instance_id == old_paas.instance_id
    assert {e: (c.slot, c.runs) for e, c in store.last_claims(lock_name).items()} == old

    token = hand_over(store, lock_name, ecs, 1)
    fenced = store.fence(
        lock_name, ["letters", "invoices"], identity=ecs, token=token, everything=True
    )
    assert {e: (c.slot, c.runs) for e, c in fenced.items()} == old
    assert {c.token for c in fenced.values()} == {1}
    fields = stored_lease_fields(lock_name)
    names = {(k.decode() if isinstance(k, bytes) else k) for k in fields}
    assert GUARD_FIELD in names
    assert not [name for name in names if name.startswith(("slot:", "runs:", "claim:"))]

    # The old holder still believes it leads: refused, loudly, and nothing recorded.
    with pytest.raises(legacy.errors.CorruptRecord) as caught:
        old_claim(old_store, lock_name, old_paas, 1, "letters", LATER + timedelta(hours=1))
    assert "upgrade beat-handover here" in str(caught.value)
    assert {e: (c.slot, c.runs) for e, c in store.last_claims(lock_name).items()} == old
    mine = store.claim(lock_name, "letters", LATER, identity=ecs, token=token, claim_id="n1")
    assert (mine.claimed, mine.last.runs) == (True, old["letters"][1] + 1)


def test_an_old_beat_refuses_a_converted_lock_and_never_acts(
    legacy, old_paas, store_url, store, lock_name, ecs
):
    token = store.acquire(lock_name, ecs, expected_version=None, new_version="v1")
    assert store.fence(lock_name, ["letters"], identity=ecs, token=token, everything=True) == {}
    old_store = legacy.stores.open_store(legacy.location.parse_lock_url(store_url))
    timings = legacy.timings.LeaseTimings()
    standby = legacy.lease.Lease(old_store, lock_name, old_paas, timings)
    with pytest.raises(legacy.errors.CorruptRecord) as caught:
        standby.step()
    assert str(caught.value).startswith(
        f"lease record of lock {lock_name!r}: field {GUARD_FIELD!r} is 'claims moved to "
        "per-entry claim items by a newer beat-handover; this older version would act on stale "
        "claims, so it refuses: upgrade beat-handover here (do not edit this field)'"
    )
    # Even with the lease free, the old beat's keeper stops at its first read.
    store.release(lock_name, ecs, token, new_version="v2")
    keeper = legacy.lease.LeaseKeeper(standby)
    keeper.start()
    wait_for(lambda: not keeper.alive, 10, "the old keeper to stop")
    assert isinstance(keeper.failure, legacy.errors.CorruptRecord)
    assert standby.role.value == "standby" and standby.token is None
    assert store.read(lock_name).holder is None
    old_store.close()


def test_an_old_beat_that_takes_the_lease_back_mid_conversion_loses_no_claim(
    legacy, old_store, old_paas, store, lock_name, ecs, backend, request
):
    """An operator upgrading one environment at a time: ecs (new) takes the lease, and paas
    (old) takes it back before ecs's fence has written the guard, and claims on the lease
    record. On DynamoDB the take-back happens between ecs's claim item writes and its confirm
    (a botocore hook on ecs's client); Redis fences in one script, so there it happens just
    before it. Either way ecs's fence admits no claim, and the next conversion merges the old
    version's later claims."""
    old_store.acquire(lock_name, old_paas, expected_version=None, new_version="v1")
    for entry in ("letters", "invoices"):
        assert old_claim(old_store, lock_name, old_paas, 1, entry, SLOT).claimed
    token = hand_over(store, lock_name, ecs, 1)

    def take_back() -> None:
        old_store.pin(lock_name, "paas", expected_token=token, new_version="b1", end_tenure=True)
        assert old_store.acquire(lock_name, old_paas, expected_version=None, new_version="b2")
        assert old_claim(old_store, lock_name, old_paas, token + 2, "letters", LATER).claimed

    if backend == "dynamodb":
        confirm_sent = []

        def before_confirm(params, **_):
            body = json.loads(params["body"])
            if GUARD_FIELD in body.get("ExpressionAttributeNames", {}).values():
                if not confirm_sent:
                    take_back()
                confirm_sent.append(True)

        store.client.meta.events.register("before-call.dynamodb.UpdateItem", before_confirm)
    else:
        take_back()
    everything = ["letters", "invoices"]
    assert store.fence(lock_name, everything, identity=ecs, token=token, everything=True) is None
    if backend == "dynamodb":
        assert confirm_sent == [True]
        request.addfinalizer(
            lambda: store.client.meta.events.unregister(
                "before-call.dynamodb.UpdateItem", before_confirm
            )
        )
    # The old version leads on, unaware.
    assert old_claim(old_store, lock_name, old_paas, token + 2, "invoices", LATER).claimed

    again = hand_over(store, lock_name, ecs, token + 2)
    fenced = store.fence(lock_name, everything, identity=ecs, token=again, everything=True)
    assert {e: (c.slot, c.runs, c.token) for e, c in fenced.items()} == {
        "letters": (LATER, 2, token + 2),
        "invoices": (LATER, 2, token + 2),
    }
    with pytest.raises(legacy.errors.CorruptRecord):
        old_store.read(lock_name)


def test_a_new_lock_is_guarded_from_the_old_version_from_its_first_fence(
    legacy, old_store, store, lock_name, ecs
):
    token = store.acquire(lock_name, ecs, expected_version=None, new_version="v1")
    store.fence(lock_name, [], identity=ecs, token=token, everything=True)
    with pytest.raises(legacy.errors.CorruptRecord):
        old_store.read(lock_name)


def test_both_versions_name_a_slot_by_the_same_number(legacy):
    when = datetime(2026, 10, 25, 1, 30, 15, 250_000, tzinfo=UTC)
    assert legacy.layout.slot_millis(when) == slot_millis(when) == 1_792_891_815_250


def test_a_lock_with_more_legacy_claims_than_one_write_removes_is_converted_whole(
    legacy, old_store, old_paas, store, lock_name, ecs, stored_lease_fields
):
    names = [f"app.tasks.entry_{i:03d}" for i in range(200)]  # 800 legacy fields
    old_store.acquire(lock_name, old_paas, expected_version=None, new_version="v1")
    for i, entry in enumerate(names):
        assert old_claim(old_store, lock_name, old_paas, 1, entry, SLOT, f"c{i}").claimed
    token = hand_over(store, lock_name, ecs, 1)
    fenced = store.fence(lock_name, [], identity=ecs, token=token, everything=True)
    assert sorted(fenced) == names
    assert {(c.slot, c.runs, c.token) for c in fenced.values()} == {(SLOT, 1, 1)}
    assert len(stored_lease_fields(lock_name)) < 20
    assert sorted(store.last_claims(lock_name)) == names
