"""Beat's metrics against a real UDP socket and a real pipe: the statsd lines and EMF documents
each event makes, the settings that choose them (refused in one line when wrong), timed renewals
on a real store, and that a failing sink never raises into beat."""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.lease import Lease
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings
from beat_handover.scheduler.metrics import (
    BeatMetrics,
    EmfSink,
    StatsdSink,
    StatsdTarget,
    parse_statsd_url,
    statsd_from_environ,
)
from beat_handover.scheduler.settings import BeatLockSettings

NOW = datetime(2026, 6, 17, 9, 0, 0, 250000, tzinfo=UTC)
URL = "app.conf.beat_lock_statsd_url"


def received(sock: socket.socket, count: int) -> list[str]:
    return [sock.recv(65535).decode() for _ in range(count)]


def metrics_to(sock: socket.socket, *, tags: str = "dogstatsd", **options) -> BeatMetrics:
    target = StatsdTarget("127.0.0.1", sock.getsockname()[1], "beat_lock", tags)
    return BeatMetrics(
        lock="beat",
        environment="ecs",
        sinks=[StatsdSink(target), *options.pop("more", [])],
        clock=lambda: NOW,
        **options,
    )


def test_each_event_is_one_statsd_line_with_its_dimensions_as_tags(statsd_listener):
    metrics = metrics_to(statsd_listener)

    metrics.claimed("letters")
    metrics.sent("letters", NOW - timedelta(seconds=1.5))
    metrics.refused("letters", "already-claimed")
    metrics.publish_failed("letters")
    metrics.in_doubt("letters")
    metrics.renewal(0.0123, renewed=True)
    metrics.renewal(0.5, renewed=False)
    metrics.renewal_unanswered()

    assert received(statsd_listener, 9) == [
        "beat_lock.runs.claimed:1|c|#lock:beat,environment:ecs,entry:letters",
        "beat_lock.runs.sent:1|c|#lock:beat,environment:ecs,entry:letters",
        "beat_lock.runs.lateness:1500|ms|#lock:beat,environment:ecs,entry:letters",
        "beat_lock.claims.refused:1|c|#lock:beat,environment:ecs,entry:letters,"
        "reason:already-claimed",
        "beat_lock.publish.failed:1|c|#lock:beat,environment:ecs,entry:letters",
        "beat_lock.runs.in_doubt:1|c|#lock:beat,environment:ecs,entry:letters",
        "beat_lock.renewal.latency:12.3|ms|#lock:beat,environment:ecs",
        "beat_lock.renewal.failed:1|c|#lock:beat,environment:ecs,reason:refused",
        "beat_lock.renewal.failed:1|c|#lock:beat,environment:ecs,reason:unanswered",
    ]


def test_graphite_style_puts_the_dimensions_in_the_name_made_safe(statsd_listener):
    metrics = metrics_to(statsd_listener, tags="graphite")

    metrics.claimed("reports: daily|all")

    assert received(statsd_listener, 1) == [
        "beat_lock.runs.claimed.beat.ecs.reports__daily_all:1|c"
    ]


def test_emf_lines_are_cloudwatch_embedded_metric_documents(statsd_listener):
    read_end, write_end = os.pipe()
    metrics = metrics_to(statsd_listener, more=[EmfSink(fd=write_end)])
    try:
        metrics.sent("letters", NOW - timedelta(seconds=2))
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            lines = pipe.read().splitlines()
    finally:
        received(statsd_listener, 2)
    sent, lateness = (json.loads(line) for line in lines)
    assert sent["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "BeatHandover/Beat",
            "Dimensions": [["lock"], ["lock", "environment"], ["lock", "entry"]],
            "Metrics": [{"Name": "runs.sent", "Unit": "Count"}],
        }
    ]
    assert isinstance(sent["_aws"]["Timestamp"], int)
    assert {k: v for k, v in sent.items() if k != "_aws"} == {
        "lock": "beat",
        "environment": "ecs",
        "entry": "letters",
        "runs.sent": 1,
    }
    assert lateness["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "runs.lateness", "Unit": "Milliseconds"}
    ]
    assert lateness["runs.lateness"] == 2000.0


def test_a_failing_sink_never_raises_and_is_logged_once_until_it_works(statsd_listener, caplog):
    caplog.set_level(logging.INFO, logger="beat_handover.scheduler.metrics")
    metrics = metrics_to(statsd_listener)
    sink = metrics.sinks[0]
    good_socket = sink._socket
    sink._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink._socket.close()  # every send now fails: EBADF

    for _ in range(3):
        metrics.claimed("letters")
    sink._socket = good_socket
    metrics.claimed("letters")

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    port = statsd_listener.getsockname()[1]
    assert messages[0].startswith(
        f"metrics: sending to statsd://127.0.0.1:{port}/beat_lock failed ("
    )
    assert messages[0].endswith(
        "beat goes on, and further failures are not logged until it works again"
    )
    assert messages[1].endswith("works again after 3 failures")
    assert received(statsd_listener, 1) == [
        "beat_lock.runs.claimed:1|c|#lock:beat,environment:ecs,entry:letters"
    ]


def test_a_host_name_is_looked_up_on_the_metrics_thread_not_on_beats(statsd_listener):
    sink = StatsdSink(StatsdTarget("localhost", statsd_listener.getsockname()[1]))
    assert sink._address is None  # nothing looked up while beat builds its scheduler
    sink.send("runs.claimed", 1, {"lock": "beat"})  # dropped, not waited for

    sink.refresh()
    sink.send("runs.claimed", 1, {"lock": "beat"})

    assert received(statsd_listener, 1) == ["beat_lock.runs.claimed:1|c|#lock:beat"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "udp://127.0.0.1:8125",
            f"{URL} must be a URL such as statsd://127.0.0.1:8125/beat_lock (scheme statsd, "
            "a host), got 'udp://127.0.0.1:8125'",
        ),
        ("statsd://host:99999", f"{URL}: the port must be 1-65535, got 'statsd://host:99999'"),
        ("statsd://host:x1", f"{URL}: the port must be 1-65535, got 'statsd://host:x1'"),
        (
            "statsd://host/beat lock",
            f"{URL}: the metric prefix may hold letters, digits, '_', '-' and '.', got 'beat lock'",
        ),
        (
            "statsd://host?tags=influx",
            f"{URL}: the only option is tags=dogstatsd or tags=graphite, got "
            "'statsd://host?tags=influx'",
        ),
    ],
)
def test_a_wrong_statsd_url_is_refused_in_one_line(value, message):
    app = Celery(set_as_current=False)
    app.conf.beat_lock_statsd_url = value
    with pytest.raises(ConfigError) as caught:
        BeatLockSettings.from_app(app, environ={})
    assert str(caught.value) == message


def test_statsd_url_defaults_and_the_usual_environment_variables():
    assert parse_statsd_url("statsd://stats.internal", URL) == StatsdTarget(
        "stats.internal", 8125, "beat_lock", "dogstatsd"
    )
    assert parse_statsd_url("statsd://10.0.0.5:9125/app.beat?tags=graphite", URL) == (
        StatsdTarget("10.0.0.5", 9125, "app.beat", "graphite")
    )
    assert parse_statsd_url("", URL) is None
    assert statsd_from_environ({"STATSD_PORT": "9125"}) is None  # no host: no statsd
    assert statsd_from_environ(
        {"STATSD_HOST": "agent", "STATSD_PORT": "9125", "STATSD_PREFIX": "app"}
    ) == StatsdTarget("agent", 9125, "app")
    with pytest.raises(ConfigError) as caught:
        statsd_from_environ({"STATSD_HOST": "agent", "STATSD_PORT": "eighty"})
    assert str(caught.value) == (
        "environment variable STATSD_PORT must be a port number 1-65535, got 'eighty'"
    )


def test_the_settings_choose_the_sinks_and_the_url_wins_over_the_variables():
    app = Celery(set_as_current=False)
    app.conf.update(beat_lock_name="beat", beat_lock_renew_seconds=2)
    environ = {"STATSD_HOST": "agent", "BEAT_LOCK_METRICS_EMF": "true"}

    settings = BeatLockSettings.from_app(app, environ=environ)
    metrics = BeatMetrics.from_settings(settings, "ecs", environ)
    assert metrics.describe() == "statsd://agent:8125/beat_lock, EMF lines on stdout"
    assert metrics.interval_seconds == 2.0

    app.conf.beat_lock_statsd_url = "statsd://127.0.0.1:9999/x"
    settings = BeatLockSettings.from_app(app, environ={})
    assert BeatMetrics.from_settings(settings, "ecs", environ).describe() == (
        "statsd://127.0.0.1:9999/x"
    )
    with pytest.raises(ConfigError) as caught:
        BeatLockSettings.from_app(app, environ={"BEAT_LOCK_METRICS_EMF": "sometimes"})
    assert str(caught.value) == (
        "environment variable BEAT_LOCK_METRICS_EMF must be true or false, got 'sometimes'"
    )
    off = BeatMetrics.from_settings(BeatLockSettings.from_app(None, environ={}), "ecs", {})
    assert off.sinks == []
    assert off.describe() == "off (set beat_lock_statsd_url or STATSD_HOST)"


@pytest.mark.integration
def test_renewals_on_a_real_store_are_timed_and_the_gauges_say_who_leads(
    statsd_listener, redis_url, unique_name
):
    timings = LeaseTimings(lease_seconds=2, renew_seconds=0.4, safe_seconds=1.5, poll_seconds=0.2)
    metrics = metrics_to(statsd_listener, interval_seconds=0.2)
    store = open_store(parse_lock_url(redis_url), timings)
    lease = Lease(metrics.timed(store), unique_name, Identity.new("ecs"), timings)
    standby = Lease(store, unique_name, Identity.new("paas"), timings)
    lease.step()  # acquires
    lease.step()  # renews at once: timed
    standby.step()  # a live paas standby
    metrics.start(lease)
    wanted = {
        "beat_lock.leader:1|g|#lock:beat,environment:ecs",
        "beat_lock.standbys:1|g|#lock:beat,environment:paas",
        "beat_lock.standbys:0|g|#lock:beat,environment:ecs",
    }
    try:
        lines: list[str] = []
        while not wanted <= set(lines):
            lines.extend(received(statsd_listener, 1))
    finally:
        metrics.stop()
        lease.release()
        standby.release()
        store.close()
    assert lines[0].startswith("beat_lock.renewal.latency:")
    assert lines[0].endswith("|ms|#lock:beat,environment:ecs")
    assert 0 < float(lines[0].split(":")[1].split("|")[0]) < 5000
    assert received(statsd_listener, 1) == ["beat_lock.leader:0|g|#lock:beat,environment:ecs"]
