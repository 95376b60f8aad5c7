"""The run headers: what the scheduler writes is what the guard reads back."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.headers import run_headers, slot_of


def test_headers_name_the_run_in_utc_and_read_back():
    slot = datetime(2025, 3, 30, 2, 0, tzinfo=timezone(timedelta(hours=1)))
    headers = run_headers("letters", slot, token=7, environment="ecs")
    assert headers == {
        "beat_lock_token": 7,
        "beat_lock_environment": "ecs",
        "beat_entry": "letters",
        "beat_slot": "2025-03-30T01:00:00+00:00",
    }
    assert slot_of(headers) == ("letters", datetime(2025, 3, 30, 1, 0, tzinfo=UTC))


def test_messages_without_run_headers_are_not_runs():
    assert slot_of(None) is None
    assert slot_of({"beat_entry": "letters"}) is None


@pytest.mark.parametrize("slot", ["2025-03-30T01:00:00", 5, "yesterday"])
def test_malformed_slots_are_the_toolkits_config_error(slot):
    with pytest.raises(ConfigError, match="beat_slot"):
        slot_of({"beat_entry": "letters", "beat_slot": slot})
