"""The beat_lock_* settings as one table: unknown keys and variables are errors that name the
nearest setting, durations take units within bounds, and a password stays out of app.conf."""

from __future__ import annotations

import pytest
from celery import Celery

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.durations import DurationRange, format_duration, parse_duration
from beat_handover.scheduler.settings import SETTINGS, BeatLockSettings

BASE = {"BEAT_LOCK_URL": "redis://localhost:6379/0", "BEAT_LOCK_ENVIRONMENT": "paas"}
KNOWN = ", ".join(SETTINGS)


def app(**conf: object) -> Celery:
    celery = Celery("settings-tests", set_as_current=False)
    celery.conf.update(conf)
    return celery


def refusal(app_or_none: object, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        BeatLockSettings.from_app(app_or_none, environ)
    return str(caught.value)


@pytest.mark.parametrize(
    ("key", "nearest"),
    [
        ("beat_lock_critcal", "beat_lock_critical"),
        ("beat_lock_lease_second", "beat_lock_lease_seconds"),
        ("BEAT_LOCK_URL", "beat_lock_url"),
    ],
)
def test_an_unknown_key_in_app_conf_names_the_nearest_setting(key, nearest):
    message = refusal(app(**{key: ["letters"]}), BASE)
    assert message == (
        f"app.conf.{key} is not a beat_lock setting, so it would be ignored; did you mean "
        f"{nearest}? the settings are {KNOWN}"
    )


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [
        ("BEAT_LOCK_LEASE_SECOND", "BEAT_LOCK_LEASE_SECONDS"),
        ("BEAT_LOCK_CRITCAL", "BEAT_LOCK_CRITICAL"),
        ("beat_lock_url", "BEAT_LOCK_URL"),
    ],
)
def test_an_unknown_environment_variable_names_the_nearest_one(variable, nearest):
    message = refusal(None, {**BASE, variable: "10"})
    assert message.startswith(
        f"environment variable {variable} is not a beat_lock setting, so it would be ignored; "
        f"did you mean {nearest}? the settings are BEAT_LOCK_URL, BEAT_LOCK_PASSWORD,"
    )


def test_a_key_like_nothing_known_lists_the_settings_without_a_guess():
    message = refusal(app(beat_lock_zzz=1), BASE)
    assert message == (
        "app.conf.beat_lock_zzz is not a beat_lock setting, so it would be ignored; the settings "
        f"are {KNOWN}"
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30.0), ("1.5", 1.5), ("30s", 30.0), ("1m", 60.0), ("0.5s", 0.5), (20, 20.0)],
)
def test_durations_take_a_bare_number_of_seconds_or_units(value, seconds):
    settings = BeatLockSettings.from_app(app(beat_lock_guard_ttl_seconds=value), BASE)
    assert settings.guard_ttl_seconds == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2h",
            "app.conf.beat_lock_lease_seconds must be greater than 0 and at most 1h, got '2h'",
        ),
        ("0", "app.conf.beat_lock_lease_seconds must be greater than 0 and at most 1h, got '0'"),
        (
            "30 seconds",
            "app.conf.beat_lock_lease_seconds '30 seconds' is not a duration; write it as a number "
            "with units d, h, m or s in that order, e.g. 90s, 10m, 1h30m or 2h, or a bare number "
            "of seconds",
        ),
        (True, "app.conf.beat_lock_lease_seconds must be a duration"),
    ],
)
def test_durations_out_of_bounds_or_unreadable_are_refused(value, message):
    assert refusal(app(beat_lock_lease_seconds=value), BASE).startswith(message)


def test_a_password_in_the_apps_lock_url_is_refused_and_the_password_not_shown():
    message = refusal(
        app(beat_lock_url="rediss://:s3cret@cache.example.com:6380/0"),
        {"BEAT_LOCK_ENVIRONMENT": "paas"},
    )
    assert message.startswith(
        "app.conf.beat_lock_url carries a password, which `celery inspect conf`, flower and the "
        "worker banner show in clear"
    )
    assert "s3cret" not in message


def test_the_password_setting_goes_with_the_url_and_is_never_shown():
    settings = BeatLockSettings.from_app(
        app(beat_lock_url="rediss://beat@cache.example.com:6380/0", beat_lock_password="s3cret"),
        {"BEAT_LOCK_ENVIRONMENT": "paas"},
    )
    assert settings.location.password == "s3cret"
    assert "s3cret" not in repr(settings) + settings.location.describe()


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (
            {"beat_lock_url": "dynamodb://locks?region=eu-west-2", "beat_lock_password": "pw"},
            "beat_lock_password is set, but app.conf.beat_lock_url names dynamodb table locks in "
            "eu-west-2, which takes no password",
        ),
        (
            {"beat_lock_password": "pw"},
            "environment variable BEAT_LOCK_URL carries a password and beat_lock_password is set "
            "too; keep only one",
        ),
    ],
)
def test_a_password_where_it_cannot_apply_is_refused(conf, message):
    environ = {"BEAT_LOCK_ENVIRONMENT": "paas"}
    if "beat_lock_url" not in conf:
        environ["BEAT_LOCK_URL"] = "redis://:other@localhost:6379/0"
    assert refusal(app(**conf), environ).startswith(message)


def test_a_malformed_url_never_echoes_its_password():
    message = refusal(None, {**BASE, "BEAT_LOCK_URL": "redis://:s3cret@host:port/0"})
    assert "s3cret" not in message
    assert "'redis://:***@host:port/0' is not a valid URL" in message


@pytest.mark.parametrize(
    ("text", "allowed", "seconds"),
    [
        ("90s", DurationRange(low=1, high=3600), 90.0),
        ("1h30m", DurationRange(low=1, high=86400), 5400.0),
        ("2H", DurationRange(low=1, high=86400), 7200.0),
        ("1m2.5s", DurationRange(low=0, high=60 * 60), 62.5),
        ("0", DurationRange(low=60, high=86400, off="no check", bare=False), 0.0),
        ("5", DurationRange(low=1, high=60), 5.0),
    ],
)
def test_duration_forms(text, allowed, seconds):
    assert parse_duration(text, allowed, source="--x") == seconds


@pytest.mark.parametrize(
    ("text", "allowed", "message"),
    [
        (
            "10",
            DurationRange(low=60, high=86400, off="no check", bare=False),
            "--guard '10' needs a unit: write 10m or 10s, for example (a bare number is not taken "
            "here, so seconds are never read as minutes)",
        ),
        (
            "99999h",
            DurationRange(low=1, high=3600),
            "--guard must be from 1s to 1h, got '99999h'",
        ),
        (
            "1.5h",
            DurationRange(low=1, high=86400),
            "--guard '1.5h' is not a duration; write it as a number with units d, h, m or s in "
            "that order, e.g. 90s, 10m, 1h30m or 2h, or a bare number of seconds",
        ),
        ("2.5s", DurationRange(low=1, high=60, whole=True), "--guard must be whole seconds"),
        ("1m1h", DurationRange(low=1, high=86400), "--guard '1m1h' is not a duration"),
        ("-5m", DurationRange(low=1, high=86400), "--guard '-5m' is not a duration"),
        ("", DurationRange(low=1, high=86400), "--guard '' is not a duration"),
    ],
)
def test_duration_refusals_say_what_would_be_accepted(text, allowed, message):
    with pytest.raises(ConfigError) as caught:
        parse_duration(text, allowed, source="--guard")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0123, "0.012s"),
        (0.4213, "0.421s"),
        (0.2, "0.2s"),
        (2.345, "2.35s"),
        (12.34, "12.3s"),
        (59.97, "1m"),
        (90, "1m30s"),
        (245, "4m5s"),
        (5400, "1h30m"),
        (14426, "4h0m26s"),
        (86401, "1d0h0m1s"),
        (90061, "1d1h1m1s"),
    ],
)
def test_one_output_format_that_parses_back(seconds, text):
    assert format_duration(seconds) == text
    back = parse_duration(text, DurationRange(low=0, high=10**6, off="off"), source="x")
    rounding = 0.0005 if seconds < 1 else 0.005 if seconds < 10 else 0.05 if seconds < 60 else 0.5
    assert abs(back - seconds) <= rounding


def test_waiting_for_redis_replicas_is_a_redis_setting_with_a_timeout():
    redis_settings = BeatLockSettings.from_app(
        app(beat_lock_redis_wait_replicas=1, beat_lock_redis_wait_timeout_seconds="0.25"), BASE
    )
    assert (
        redis_settings.location.wait_replicas,
        redis_settings.location.wait_timeout_seconds,
    ) == (
        1,
        0.25,
    )
    assert BeatLockSettings.from_app(app(), BASE).location.wait_replicas == 0
    dynamodb = {**BASE, "BEAT_LOCK_URL": "dynamodb://beat-lock?region=eu-west-2"}
    assert refusal(app(beat_lock_redis_wait_replicas=1), dynamodb) == (
        "app.conf.beat_lock_redis_wait_replicas is 1, but the lock is in dynamodb table "
        "beat-lock in eu-west-2, which replicates every write itself; unset it"
    )
    assert refusal(None, {**BASE, "BEAT_LOCK_REDIS_WAIT_REPLICAS": "-1"}) == (
        "environment variable BEAT_LOCK_REDIS_WAIT_REPLICAS must be a whole number from 0 to 16, "
        "got '-1'"
    )
