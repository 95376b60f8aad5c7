"""Which due slots an entry sends: on-time grace, catch-up policies, max lateness, first slots."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule

from beat_handover.scheduler.slots import CatchUpRules, Position, decide, next_due

T = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
EVERY_SECOND = schedule(timedelta(seconds=1))
EVERY_MINUTE = crontab(minute="*")


def rules(
    policy: str = "latest", *, grace: float = 5, lateness: float = 3600, limit: int = 100
) -> CatchUpRules:
    return CatchUpRules(policy, grace, lateness, limit)


def seconds(*offsets: int) -> tuple[datetime, ...]:
    return tuple(T + timedelta(seconds=offset) for offset in offsets)


def claimed_at(slot: datetime) -> Position:
    return Position.start(slot, 7, slot, 5)


def test_on_time_slots_are_all_sent_whatever_the_policy():
    for policy in ("latest", "all", "none"):
        decision = decide(
            EVERY_SECOND, claimed_at(T), T + timedelta(seconds=3.2), tz=UTC, rules=rules(policy)
        )
        assert decision.send == seconds(1, 2, 3)
        assert decision.skipped == ()


def test_latest_skips_late_slots_when_one_is_on_time():
    decision = decide(
        EVERY_SECOND, claimed_at(T), T + timedelta(seconds=20), tz=UTC, rules=rules("latest")
    )
    assert decision.send == seconds(*range(15, 21))
    assert decision.skipped == seconds(*range(1, 15))
    assert decision.last == T + timedelta(seconds=20)


def test_latest_sends_the_newest_late_slot_once_when_none_is_on_time():
    last = T.replace(minute=0)
    now = T.replace(minute=10, second=30)
    decision = decide(EVERY_MINUTE, claimed_at(last), now, tz=UTC, rules=rules("latest"))
    assert decision.send == (T.replace(minute=10),)
    assert decision.skipped == tuple(T.replace(minute=m) for m in range(1, 10))


def test_all_sends_the_newest_late_slots_up_to_the_limit_oldest_first():
    decision = decide(
        EVERY_SECOND, claimed_at(T), T + timedelta(seconds=20), tz=UTC, rules=rules("all", limit=3)
    )
    assert decision.send == seconds(12, 13, 14, *range(15, 21))
    assert decision.skipped == seconds(*range(1, 12))


def test_none_sends_only_on_time_slots():
    decision = decide(
        EVERY_SECOND, claimed_at(T), T + timedelta(seconds=20), tz=UTC, rules=rules("none")
    )
    assert decision.send == seconds(*range(15, 21))
    assert decision.skipped == seconds(*range(1, 15))


def test_slots_older_than_max_lateness_are_never_listed_or_sent():
    now = T + timedelta(days=30)
    decision = decide(
        EVERY_SECOND, claimed_at(T), now, tz=UTC, rules=rules("all", lateness=30, limit=1000)
    )
    assert decision.missed_before == now - timedelta(seconds=30)
    assert decision.send == tuple(now - timedelta(seconds=s) for s in range(29, -1, -1))


def test_no_missed_report_when_nothing_fell_before_the_horizon():
    last = T.replace(minute=0)
    decision = decide(
        EVERY_MINUTE,
        claimed_at(last),
        last + timedelta(seconds=50),
        tz=UTC,
        rules=rules(lateness=10),
    )
    assert decision.missed_before is None
    assert decision.send == ()


def test_interval_slots_keep_the_phase_of_the_last_claim():
    anchor = T + timedelta(milliseconds=250)
    decision = decide(
        EVERY_SECOND, claimed_at(anchor), T + timedelta(seconds=2.5), tz=UTC, rules=rules()
    )
    assert decision.send == (anchor + timedelta(seconds=1), anchor + timedelta(seconds=2))


def test_an_interval_entry_without_a_claim_counts_from_when_it_is_first_seen():
    """As stock beat: the first run is one interval after the entry was first seen."""
    now = T + timedelta(seconds=3, microseconds=400_000)
    position = Position.start(None, 0, now, 5)
    decision = decide(EVERY_SECOND, position, now, tz=UTC, rules=rules("none"))
    assert (decision.send, decision.first_seen) == ((), T + timedelta(seconds=3))
    assert next_due(EVERY_SECOND, position, now, tz=UTC) == now
    seen = Position(decision.first_seen, decision.first_seen, 0)
    later = now + timedelta(seconds=1)
    assert decide(EVERY_SECOND, seen, later, tz=UTC, rules=rules()).send == (
        T + timedelta(seconds=4),
    )


@pytest.mark.parametrize(
    ("started", "sent"),
    [
        (T + timedelta(seconds=4), (T,)),  # a fire time within the grace is still sent
        (T + timedelta(seconds=6), ()),  # older: wait for the next one
    ],
)
def test_first_slot_of_a_crontab_entry(started, sent):
    position = Position.start(None, 0, started, 5)
    decision = decide(EVERY_MINUTE, position, started, tz=UTC, rules=rules("all"))
    assert decision.send == sent
    assert decision.skipped == ()


def test_next_due_is_the_first_fire_time_after_now():
    position = claimed_at(T)
    now = T + timedelta(seconds=30)
    assert next_due(EVERY_MINUTE, position, now, tz=UTC) == T + timedelta(minutes=1)
    assert next_due(EVERY_SECOND, position, now, tz=UTC) == T + timedelta(seconds=31)


def test_crontab_slots_are_computed_in_the_app_timezone():
    london = ZoneInfo("Europe/London")
    daily = crontab(minute=30, hour=9)
    last = datetime(2025, 7, 1, 8, 30, tzinfo=UTC)  # 09:30 BST
    now = datetime(2025, 7, 2, 8, 30, 1, tzinfo=UTC)
    decision = decide(daily, claimed_at(last), now, tz=london, rules=rules(lateness=86400))
    assert decision.send == (datetime(2025, 7, 2, 8, 30, tzinfo=UTC),)
