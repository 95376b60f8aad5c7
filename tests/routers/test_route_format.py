"""The route item format: exact percentages, side validation, round trips, malformed items."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beat_handover.routers.errors import MalformedRoute, RouterConfigError
from beat_handover.routers.route_format import (
    RESOLUTION,
    OriginSide,
    QueueSide,
    format_percent,
    parse_percent,
    route_from_item,
    route_to_item,
    side_from_url,
)
from tests.routers.conftest import origin_route

percents = st.integers(0, RESOLUTION).map(lambda draws: Decimal(draws) / 10_000)


@pytest.mark.parametrize(
    ("text", "threshold"),
    [
        ("0", 0),
        ("100", RESOLUTION),
        ("0.1", 1_000),
        ("1", 10_000),
        ("50", 500_000),
        ("0.0001", 1),
        ("12.5", 125_000),
        ("-0", 0),
        ("1e1", 100_000),
    ],
)
def test_percent_threshold_is_exact(text, threshold):
    route = origin_route("web", format_percent(parse_percent(text, source="PERCENT")))
    assert route.threshold == threshold


@pytest.mark.parametrize(
    "value", ["abc", "", "nan", "inf", "-1", "100.0001", "0.00001", "1,5", True, 1.5, None]
)
def test_bad_percentages_are_refused_with_the_value_seen(value):
    with pytest.raises(RouterConfigError) as caught:
        parse_percent(value, source="PERCENT")
    assert str(caught.value) == (
        "PERCENT must be a number from 0 to 100 with at most 4 decimal places, such as 0.1 or "
        f"25, got {value!r}"
    )


@given(percents)
def test_percent_survives_a_round_trip_through_the_item(percent):
    route = origin_route("web", format_percent(percent))
    assert route_from_item(route_to_item(route)) == route
    assert route.threshold == percent * 10_000


def test_origin_url_sets_protocol_port_and_path():
    side = side_from_url(
        "cloudfront", "ecs", "http://ecs.example.com/app/", where="--new", read_timeout_seconds=60
    )
    assert side == OriginSide("ecs", "ecs.example.com", "http", 80, "/app", 60, None)


def test_queue_url_side_knows_its_queue_name():
    url = "https://sqs.eu-west-2.amazonaws.com/123456789012/ecs-ses"
    side = side_from_url("ses_receipts", "ecs", url, where="--new")
    assert side == QueueSide("ecs", url)
    assert side.queue_name == "ecs-ses"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://x.example.com",
            "--new must be an origin URL such as https://ecs.example.com or "
            "http://ecs.example.com:8080/app, got 'ftp://x.example.com'",
        ),
        (
            "https://bad_host.example.com",
            "--new (a cloudfront side): field 'domain_name' must be a host name such as "
            "ecs.example.com (no scheme, port or path), got 'bad_host.example.com'",
        ),
        ("https://x.example.com:99999", "--new 'https://x.example.com:99999' is not a URL ("),
    ],
)
def test_bad_origin_urls_say_what_is_wrong(url, message):
    with pytest.raises(RouterConfigError) as caught:
        side_from_url("cloudfront", "ecs", url, where="--new")
    assert str(caught.value).startswith(message)


def _item(**changes):
    item = route_to_item(origin_route("web", "5"))
    item.update(changes)
    return {key: value for key, value in item.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"percent": {"S": "five"}},
            "route 'web': percent must be a number from 0 to 100 with "
            "at most 4 decimal places, such as 0.1 or 25, got 'five'",
        ),
        (
            {"percent": {"N": "-1"}},
            "route 'web': percent must be a number from 0 to 100 with at "
            "most 4 decimal places, such as 0.1 or 25, got Decimal('-1')",
        ),
        (
            {"percent": {"N": "100.5"}},
            "route 'web': percent must be a number from 0 to 100 with "
            "at most 4 decimal places, such as 0.1 or 25, got Decimal('100.5')",
        ),
        (
            {"percent": None},
            "route 'web': percent must be a number from 0 to 100 with at most 4 "
            "decimal places, such as 0.1 or 25, got None",
        ),
        (
            {"kind": {"S": "smtp"}},
            "route 'web': kind must be one of cloudfront, ses_receipts, got 'smtp'",
        ),
        (
            {"new": None},
            "route 'web': new (a cloudfront side) must be a map of label, domain_name, protocol, "
            "port, path, read_timeout_seconds, keepalive_timeout_seconds, got None",
        ),
        (
            {"new": {"M": {"label": {"S": "ecs"}, "queue_url": {"S": "x"}}}},
            "route 'web': new (a cloudfront side) has unknown field(s) 'queue_url'; the fields "
            "are label, domain_name, protocol, port, path, read_timeout_seconds, "
            "keepalive_timeout_seconds",
        ),
        (
            {"old": {"M": {"label": {"S": "new"}, "domain_name": {"S": "a.example.com"}}}},
            "route 'web': the sides need distinct labels, and old may not be called 'new' nor new "
            "'old'; got old='new' new='ecs'",
        ),
        (
            {"version": {"S": "1"}},
            "route 'web': version must be a whole number >= 0, got '1'",
        ),
        ({"pk": {"S": "lease#web"}}, "route item has pk 'lease#web'; expected route#NAME"),
    ],
)
def test_malformed_items_are_reported_not_guessed(changes, message):
    with pytest.raises(MalformedRoute) as caught:
        route_from_item(_item(**changes))
    assert str(caught.value) == message


def test_an_item_with_an_unknown_attribute_type_is_malformed():
    with pytest.raises(MalformedRoute, match="an attribute value route items never hold"):
        route_from_item(_item(percent={"Q": "1"}))
