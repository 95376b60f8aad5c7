"""Settings the scheduler adds: the on-time grace, its bound on max lateness, the guard TTL."""

import pytest

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.settings import BeatLockSettings

BASE = {"BEAT_LOCK_URL": "redis://localhost:6379/0", "BEAT_LOCK_ENVIRONMENT": "paas"}


def settings(**environ: str) -> BeatLockSettings:
    return BeatLockSettings.from_app(None, {**BASE, **environ})


def test_grace_is_two_polls_but_at_least_five_seconds():
    assert settings(BEAT_LOCK_POLL_SECONDS="0.2").grace_seconds == 5.0
    assert settings(BEAT_LOCK_POLL_SECONDS="4").grace_seconds == 8.0


def test_max_lateness_below_the_grace_is_refused_with_both_values():
    with pytest.raises(ConfigError) as caught:
        settings(BEAT_LOCK_MAX_LATENESS_SECONDS="3")
    assert str(caught.value) == (
        "environment variable BEAT_LOCK_MAX_LATENESS_SECONDS (3s) must be at least the on-time "
        "grace (5s = max(2 x beat_lock_poll_seconds, 5s)): a run that is on time is always sent"
    )


def test_guard_ttl_defaults_to_a_week_and_must_be_positive():
    assert settings().guard_ttl_seconds == 7 * 24 * 3600
    with pytest.raises(ConfigError, match="BEAT_LOCK_GUARD_TTL_SECONDS must be greater than 0"):
        settings(BEAT_LOCK_GUARD_TTL_SECONDS="0")
