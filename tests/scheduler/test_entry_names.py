"""One resolution of beat_lock_critical and beat_lock_catch_up, for beat, preflight and report."""

from __future__ import annotations

import pytest

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.entry_names import resolve_entry_names

ENTRIES = ["letters-daily", "letters-weekly", "texts-hourly", "tick"]


def test_a_critical_glob_makes_its_entries_critical_with_catch_up_none():
    """The measured split: the guard matched globs while beat tested exact names, so
    letters-daily was critical to the guard and caught up under latest by beat."""
    names = resolve_entry_names(ENTRIES, ["letters-*"], {})
    assert names.critical == {"letters-daily", "letters-weekly"}
    assert [names.policy(e) for e in ENTRIES] == ["none", "none", "latest", "latest"]


def test_catch_up_keys_are_names_or_globs_and_an_exact_name_wins():
    names = resolve_entry_names(
        ENTRIES, ["letters-*"], {"letters-*": "all", "letters-daily": "none"}
    )
    assert names.policy("letters-daily") == "none"
    assert names.policy("letters-weekly") == "all"


def test_two_globs_giving_one_entry_two_policies_is_an_error():
    with pytest.raises(ConfigError) as caught:
        resolve_entry_names(ENTRIES, [], {"letters-*": "all", "*-weekly": "none"})
    assert str(caught.value) == (
        "beat_lock_catch_up gives entry 'letters-weekly' two policies: all by 'letters-*' and "
        "none by '*-weekly'; name the entry itself to choose"
    )


@pytest.mark.parametrize(
    ("critical", "catch_up", "message"),
    [
        (
            ["send-leters"],
            {},
            "beat_lock_critical: 'send-leters' matches no entry of the schedule; known entries: "
            "letters-daily, letters-weekly, texts-hourly, tick",
        ),
        (
            [],
            {"tik": "all"},
            "beat_lock_catch_up: 'tik' matches no entry of the schedule; did you mean 'tick'? "
            "known entries: letters-daily, letters-weekly, texts-hourly, tick",
        ),
    ],
)
def test_a_name_or_glob_matching_nothing_is_an_error(critical, catch_up, message):
    with pytest.raises(ConfigError) as caught:
        resolve_entry_names(ENTRIES, critical, catch_up)
    assert str(caught.value) == message


def test_repeat_safe_names_resolve_like_the_critical_ones():
    names = resolve_entry_names(ENTRIES, [], {}, ["letters-*"])
    assert names.repeat_safe == {name for name in ENTRIES if name.startswith("letters-")}
    with pytest.raises(ConfigError) as caught:
        resolve_entry_names(ENTRIES, [], {}, ["leters-*"])
    assert str(caught.value).startswith("beat_lock_repeat_safe: 'leters-*' matches no entry")
