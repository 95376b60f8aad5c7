"""The switch on the moto server: exact shares, stickiness, one read per TTL, fail-safe reads."""

from __future__ import annotations

import json
import logging
import math
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beat_handover.routers.config import CloudFrontConfig, open_switch, parse_config
from beat_handover.routers.route_format import RESOLUTION, Rollout, route_from_item, route_to_item
from beat_handover.routers.route_store import change_percent, get_route, write_change
from beat_handover.routers.switch import NEW, OLD, bucket
from tests.routers.conftest import BY, REGION, origin_route
from tests.servers import free_port

pytestmark = pytest.mark.integration
DRAWS = 60_000


@pytest.fixture
def emitted() -> list[dict]:
    return []


@pytest.fixture
def make_switch(route_table, name, clock, emitted):
    def make(route=None, *, seed=20240501, **config):
        parsed = parse_config(
            CloudFrontConfig,
            {"route": route or name, "table": route_table, "region": REGION, **config},
        )
        return open_switch(
            parsed,
            clock=clock,
            rng=random.Random(seed),
            emit=lambda line: emitted.append(json.loads(line)),
        )

    return make


def counting(switch):
    """Wrap the switch's reader so the test can count the DynamoDB reads it makes."""
    reads = []
    real = switch.reader

    def reader():
        reads.append(1)
        return real()

    switch.reader = reader
    return reads


def new_share(switch, keys):
    return sum(switch.decide(key).side == NEW for key in keys)


def test_zero_sends_nothing_and_hundred_sends_everything(
    name, make_switch, put_route, dynamodb, route_table, clock
):
    put_route(origin_route(name, "0"))
    switch = make_switch()
    half = DRAWS // 2
    assert new_share(switch, [None] * half) == 0
    assert new_share(switch, (f"visitor-{i}" for i in range(half))) == 0
    change_percent(dynamodb, route_table, name, Decimal(100), action="set", reason="all in", **BY)
    clock.advance(30)
    assert new_share(switch, [None] * half) == half
    assert new_share(switch, (f"visitor-{i}" for i in range(half))) == half


@pytest.mark.parametrize("percent", ["0.1", "1", "50"])
def test_observed_share_is_within_five_sigma(name, make_switch, put_route, percent):
    put_route(origin_route(name, percent))
    switch = make_switch()
    p = float(percent) / 100
    bound = 5 * math.sqrt(DRAWS * p * (1 - p))
    assert abs(new_share(switch, [None] * DRAWS) - DRAWS * p) <= bound
    assert abs(new_share(switch, (f"visitor-{i}" for i in range(DRAWS))) - DRAWS * p) <= bound


def test_keys_stay_put_and_only_ever_move_old_to_new(
    name, make_switch, put_route, dynamodb, route_table, clock
):
    put_route(origin_route(name, "0"))
    switch = make_switch()
    keys = [f"visitor-{i}" for i in range(5000)]
    previous: set[str] = set()
    for percent in ["0.1", "1", "5", "25", "50", "99.9", "100"]:
        change_percent(dynamodb, route_table, name, Decimal(percent), action="set", reason="", **BY)
        clock.advance(30)
        on_new = {key for key in keys if switch.decide(key).side == NEW}
        assert on_new == {key for key in keys if switch.decide(key).side == NEW}, "not sticky"
        assert previous <= on_new, f"keys went back to old at {percent}%"
        previous = on_new
    assert previous == set(keys)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1), st.integers(0, RESOLUTION), st.integers(0, RESOLUTION))
def test_a_bucket_below_a_threshold_stays_below_every_higher_one(key, low, high):
    low, high = sorted((low, high))
    draw = bucket("web", key)
    assert 0 <= draw < RESOLUTION
    assert draw == bucket("web", key)
    assert not (draw < low and draw >= high)


def test_the_item_is_read_once_per_ttl(name, make_switch, put_route, dynamodb, route_table, clock):
    put_route(origin_route(name, "0"))
    switch = make_switch(cache_ttl_seconds=30)
    reads = counting(switch)
    assert new_share(switch, [None] * 1000) == 0
    assert len(reads) == 1
    change_percent(dynamodb, route_table, name, Decimal(100), action="set", reason="", **BY)
    clock.advance(29.9)
    assert new_share(switch, [None] * 1000) == 0, "the change was seen before the TTL ran out"
    assert len(reads) == 1
    clock.advance(0.1)
    assert new_share(switch, [None] * 1000) == 1000
    assert len(reads) == 2
    clock.advance(3600 - 30)
    for _ in range(3600 // 5):  # an hour of a request every 5 s
        switch.decide(None)
        clock.advance(5)
    assert len(reads) == 2 + 3600 // 30


def test_an_unreachable_store_keeps_the_last_good_route(
    name, make_switch, put_route, moto_server, clock, emitted, caplog
):
    put_route(origin_route(name, "100"))
    switch = make_switch(store_timeout_seconds=0.3)
    reads = counting(switch)
    assert switch.decide("k").side == NEW
    moto_server.pause()
    try:
        clock.advance(30)
        with caplog.at_level(logging.WARNING, logger="beat_handover.routers.switch"):
            assert new_share(switch, [None] * 100) == 100
        assert len(reads) == 2, "a failed read must also wait a whole TTL before the next"
    finally:
        moto_server.resume()
    assert "outcome=unreadable" in caplog.text
    assert "keeping the last good config (version=1 percent=100)" in caplog.text
    assert emitted[-1]["outcome"] == "unreadable"
    assert emitted[-1]["config"] == "stale"
    assert emitted[-1]["StoreReadFailures"] == 1
    clock.advance(30)
    assert switch.decide(None).side == NEW
    assert emitted[-1]["config"] == "current"


def test_never_having_read_a_route_sends_everything_old_and_says_so(
    name, make_switch, route_table, emitted, caplog
):
    old = origin_route(name).old
    switch = make_switch(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        store_timeout_seconds=0.3,
        fallback_side={"label": "paas", "domain_name": old.domain_name},
    )
    with caplog.at_level(logging.ERROR, logger="beat_handover.routers.switch"):
        decisions = [switch.decide(f"k{i}") for i in range(1000)]
    assert {(d.side, d.label, d.target.domain_name) for d in decisions} == {
        (OLD, "paas", "paas.example.com")
    }
    assert "NO ROUTE CONFIG HAS EVER BEEN READ: sending everything to the old side" in caplog.text
    assert emitted[0]["config"] == "none"
    assert emitted[0]["PercentToNew"] == 0.0


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ({"percent": {"S": "lots"}}, "percent must be a number from 0 to 100"),
        ({"percent": {"N": "101"}}, "got Decimal('101')"),
        (
            {"kind": {"S": "ses_receipts"}},
            "(a ses_receipts side) has unknown field(s) 'domain_name'",
        ),
        (
            {"new": {"M": {"domain_name": {"S": "ecs.example.com"}}}},
            "new (a cloudfront side) lacks the required field 'label'",
        ),
    ],
)
def test_a_malformed_item_is_reported_and_the_last_good_route_kept(
    name, make_switch, put_route, dynamodb, route_table, clock, emitted, caplog, change, reported
):
    put_route(origin_route(name, "100"))
    switch = make_switch()
    assert switch.decide(None).side == NEW
    item = route_to_item(origin_route(name, "100"))
    dynamodb.put_item(TableName=route_table, Item={**item, **change})
    clock.advance(30)
    with caplog.at_level(logging.WARNING, logger="beat_handover.routers.switch"):
        assert new_share(switch, [None] * 100) == 100
    assert "outcome=malformed" in caplog.text
    assert reported in caplog.text
    assert emitted[-1]["outcome"] == "malformed"


def test_a_malformed_first_item_sends_everything_old(
    name, make_switch, dynamodb, route_table, caplog
):
    item = route_to_item(origin_route(name, "100"))
    dynamodb.put_item(TableName=route_table, Item={**item, "percent": {"N": "-5"}})
    switch = make_switch()
    with caplog.at_level(logging.ERROR, logger="beat_handover.routers.switch"):
        assert new_share(switch, [None] * 100) == 0
    assert "outcome=malformed" in caplog.text
    assert "NO ROUTE CONFIG HAS EVER BEEN READ" in caplog.text


def test_the_item_of_another_route_is_refused(name, make_switch, put_route, caplog):
    put_route(origin_route(name, "100"))
    switch = make_switch("other")
    switch.reader = make_switch(name).reader
    with caplog.at_level(logging.ERROR, logger="beat_handover.routers.switch"):
        assert switch.decide(None).side == OLD
    assert (
        f"the item is cloudfront route {name!r}, but this handler serves cloudfront route "
        "'other'" in caplog.text
    )


def test_each_refresh_and_batch_writes_one_emf_line_with_counts(
    name, make_switch, put_route, clock, emitted
):
    put_route(origin_route(name, "50"))
    switch = make_switch()
    switch.decide(None)
    assert len(emitted) == 1
    for i in range(999):
        switch.decide(f"k{i}")
    switch.flush()
    assert len(emitted) == 2
    line = emitted[1]
    assert line["RoutedToOld"] + line["RoutedToNew"] == 1000
    assert line["RoutedToNew"] > 0 and line["RoutedToOld"] > 0
    assert line["PercentToNew"] == 50.0 and line["Route"] == name and line["event"] == "batch"
    metrics = line["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == "BeatHandover/Routers"
    assert metrics["Dimensions"] == [["Route"]]
    assert {m["Name"] for m in metrics["Metrics"]} == {
        "RoutedToOld",
        "RoutedToNew",
        "Overridden",
        "PercentToNew",
    }
    switch.flush()
    assert len(emitted) == 2, "an empty batch writes nothing"
    clock.advance(30)
    switch.decide(None)
    assert emitted[2]["event"] == "refresh" and emitted[2]["RoutedToOld"] == 0


def test_a_route_mid_rollout_is_read_as_any_other_and_a_bad_rollout_is_refused(
    name, make_switch, put_route, dynamodb, route_table, clock, caplog
):
    """The rollout fields the operator's tools add to the item: a handler reads the route it
    carries; a rollout that fails validation makes the item malformed, and the handler keeps the
    last good route, as with any other bad field."""
    put_route(origin_route(name, "0"))
    switch = make_switch()
    assert switch.decide().side == OLD
    rollout = Rollout(
        "r1",
        "bob@ops",
        "running",
        (Decimal(50), Decimal(100)),
        60,
        ("web-5xx",),
        True,
        2,
        "2026-11-29T10:00:00.000Z",
        "2026-11-29T09:59:00.000Z",
    )
    written = write_change(
        dynamodb,
        route_table,
        get_route(dynamodb, route_table, name),
        percent=Decimal(100),
        rollout=rollout,
        action="rollout-step",
        reason="",
        **BY,
    )
    item = dynamodb.get_item(
        TableName=route_table, Key={"pk": {"S": f"route#{name}"}, "sk": {"S": "route"}}
    )["Item"]
    assert route_from_item(item) == written and written.rollout == rollout
    clock.advance(30)
    assert new_share(switch, [None] * 1000) == 1000
    assert switch.route().rollout == rollout

    item["rollout"]["M"]["reached"] = {"N": "3"}  # more steps reached than there are
    dynamodb.put_item(TableName=route_table, Item=item)
    clock.advance(30)
    with caplog.at_level(logging.WARNING):
        assert new_share(switch, [None] * 1000) == 1000
    assert "rollout: reached is 3, but there are only 2 steps" in caplog.text
    assert "keeping the last good config" in caplog.text
