"""Wrong configuration gets an exact, actionable error: lock URLs, durations, slots, regions,
stores that are not there."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest

from beat_handover.beat_lock.dynamodb import DynamoDBStore
from beat_handover.beat_lock.errors import ConfigError, StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from tests.servers import free_port

FAST = LeaseTimings(lease_seconds=2.0, renew_seconds=0.4, safe_seconds=1.5, poll_seconds=0.2)
FORMS = "dynamodb://TABLE?region=REGION, redis://HOST:PORT/DB or rediss://HOST:PORT/DB"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", f"beat_lock_url is required: set it to one of {FORMS}, got ''"),
        (
            "dynamodb://ab",
            "beat_lock_url 'dynamodb://ab' names no valid DynamoDB table "
            "(3-255 of A-Z a-z 0-9 _ . -); use dynamodb://TABLE?region=REGION",
        ),
        (
            "dynamodb://locks/x",
            "beat_lock_url 'dynamodb://locks/x' has a path '/x'; use "
            "dynamodb://TABLE?region=REGION",
        ),
        (
            "dynamodb://locks?regoin=eu-west-2",
            "beat_lock_url 'dynamodb://locks?regoin=eu-west-2' has "
            "unknown parameter(s) regoin; the only one is region (e.g. ?region=eu-west-2)",
        ),
        (
            "dynamodb://locks?region=mars",
            "beat_lock_url 'dynamodb://locks?region=mars' has region "
            "'mars', which is not an AWS region name such as eu-west-2",
        ),
        (
            "redis://:6379/0",
            "beat_lock_url 'redis://:6379/0' names no host; use redis://HOST:PORT/DB",
        ),
        (
            "redis://host:port/0",
            "beat_lock_url 'redis://host:port/0' is not a valid URL (Port could "
            f"not be cast to integer value as 'port'); use {FORMS}",
        ),
        (
            "redis://host:6379/zero",
            "beat_lock_url 'redis://host:6379/zero' has database 'zero'; it "
            "must be a number, e.g. redis://HOST:6379/0",
        ),
    ],
)
def test_a_malformed_lock_url_says_what_is_wrong(url, message):
    with pytest.raises(ConfigError) as caught:
        parse_lock_url(url)
    assert str(caught.value) == message


@pytest.mark.parametrize("url", ["postgres://db/locks", "locks"])
def test_an_unknown_scheme_lists_the_forms_that_work(url):
    scheme = url.partition("://")[0] if "://" in url else ""
    with pytest.raises(ConfigError) as caught:
        parse_lock_url(url)
    assert str(caught.value) == (
        f"beat_lock_url {url!r} has unknown scheme {scheme!r}; use {FORMS}"
    )


@pytest.mark.parametrize(
    ("durations", "message"),
    [
        (
            {"lease_seconds": 10, "safe_seconds": 20},
            "lease_seconds (10) must be greater than safe_seconds (20): the holder must stop "
            "acting before a standby may take over",
        ),
        (
            {"lease_seconds": 30, "safe_seconds": 4, "renew_seconds": 5},
            "safe_seconds (4) must be greater than renew_seconds (5): otherwise the lease lapses "
            "between two renewals",
        ),
        (
            {"poll_seconds": 30},
            "poll_seconds (30) must be less than lease_seconds (30.0): a standby must look at the "
            "lease more than once per lease",
        ),
        (
            {"fallback_seconds": 20},
            "fallback_seconds (20) must be at least lease_seconds (30.0): the pinned "
            "environment's own standbys must get the first chance to take over a dead holder",
        ),
        ({"renew_seconds": 0}, "renew_seconds must be a finite number greater than 0, got 0"),
        ({"lease_seconds": "30"}, "lease_seconds must be a number of seconds, got '30' (str)"),
    ],
)
def test_durations_in_the_wrong_order_are_refused_at_construction(durations, message):
    with pytest.raises(ConfigError) as caught:
        LeaseTimings(**durations)
    assert str(caught.value) == message


def test_a_slot_without_a_timezone_is_refused_before_any_request():
    store = open_store(parse_lock_url(f"redis://127.0.0.1:{free_port()}/0"))
    lease = Lease(store, "beat", Identity.new("paas"))
    naive = datetime(2026, 3, 29, 1, 30)
    with pytest.raises(ConfigError) as caught:
        lease.claim("letters", naive)
    assert str(caught.value) == (
        "a slot must be a timezone-aware datetime (the run's fire time in UTC), got "
        "datetime.datetime(2026, 3, 29, 1, 30)"
    )


def test_no_region_anywhere_is_a_config_error(monkeypatch):
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigError) as caught:
        DynamoDBStore(parse_lock_url("dynamodb://locks"), LeaseTimings())
    assert str(caught.value) == (
        "no AWS region for the DynamoDB lock table: add ?region=REGION to the lock URL "
        "(dynamodb://TABLE?region=eu-west-2) or set AWS_REGION"
    )


def test_a_redis_nobody_listens_on_is_refused_not_a_traceback():
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = open_store(parse_lock_url(url))
    with pytest.raises(StoreUnavailable) as caught:
        store.ping()
    assert str(caught.value) == (
        f"Redis at {url} could not be reached: the connection was refused, so nothing listens "
        "there; check the host and port in beat_lock_url and that the server is running; "
        "retrying later can help"
    )


def test_a_redis_that_accepts_but_never_answers_timed_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        store = open_store(parse_lock_url(url), FAST)
        with pytest.raises(StoreUnavailable) as caught:
            store.ping()
    assert str(caught.value).startswith(
        f"Redis at {url} could not be reached: it did not answer in time (TimeoutError"
    )


def test_a_redis_host_that_does_not_resolve_says_so():
    url = "redis://no-such-host.invalid:6379/0"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(parse_lock_url(url), FAST).ping()
    assert str(caught.value) == (
        f"Redis at {url} could not be reached: the host name does not resolve; check the host "
        "and port in beat_lock_url (or this machine's DNS); retrying later can help"
    )


@pytest.mark.parametrize(
    ("endpoint", "region", "what"),
    [
        ("http://127.0.0.1:{port}", "eu-west-2", "the connection was refused"),
        ("http://no-such-host.invalid:4566", "eu-west-2", "the host name does not resolve"),
        (None, "eu-west-9", "the host name does not resolve"),
    ],
)
def test_dynamodb_that_cannot_be_reached_says_why_and_what_to_check(
    endpoint, region, what, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        shown = f"https://dynamodb.{region}.amazonaws.com"
    else:
        shown = endpoint.format(port=free_port())
        monkeypatch.setenv("AWS_ENDPOINT_URL", shown)
    store = DynamoDBStore(parse_lock_url(f"dynamodb://locks?region={region}"), FAST)
    with pytest.raises(StoreUnavailable) as caught:
        store.ping()
    assert str(caught.value).startswith(f"DynamoDB at {shown} could not be reached: {what}")
    assert str(caught.value).endswith(
        "check the region in beat_lock_url or AWS_REGION, and AWS_ENDPOINT_URL if set"
        + (" and that the server is running" if "refused" in what else " (or this machine's DNS)")
        + "; retrying later can help"
    )
