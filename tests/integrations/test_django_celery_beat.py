"""django-celery-beat's ``DatabaseScheduler``, fenced (``beat_handover.scheduler.django_beat``):
real ``celery beat`` and worker processes, Django on SQLite, entries made through the ORM as the
admin makes them, before beat starts and while it runs. Each behaviour stock ``DatabaseScheduler``
has is checked on what the worker received and on what the database then says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.harness import Processes, each_slot_once, read_records, settled, wait_for
from tests.scheduler.conftest import TIMINGS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = "tests.integrations.django_app"
SCHEDULER = "beat_handover.scheduler.django_beat:LeasedDatabaseScheduler"
TASK = "tests.integrations.django_app.record"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="session")
def django_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database, set up once for this test process (Django's own limit)."""
    path = str(tmp_path_factory.mktemp("django") / "db.sqlite3")
    names = {"TEST_DJANGO_DB": path, "DJANGO_SETTINGS_MODULE": "tests.integrations.django_settings"}
    os.environ.update(names)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
    finally:
        # Settings are read by now; left in os.environ they would turn on Celery's Django
        # fixup in every celery process later tests start.
        for name in names:
            del os.environ[name]
    return path


@pytest.fixture
def processes(tmp_path, django_db: str, redis_url: str, unique_name: str) -> Iterator[Processes]:
    base = redis_url.rsplit("/", 1)[0]
    env = {
        "TEST_BROKER_URL": f"{base}/1",
        "TEST_DJANGO_DB": django_db,
        "BEAT_LOCK_URL": redis_url,
        "BEAT_LOCK_NAME": unique_name,
        **TIMINGS,
    }
    with Processes(tmp_path, APP, env) as procs:
        yield procs


def every_second(name: str, **fields):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name=name, task=TASK, interval=interval, **fields)


def test_the_database_schedule_runs_fenced_with_its_gates_zones_and_bookkeeping(processes):
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

    now = datetime.now(UTC).replace(microsecond=0)
    every_second("tick")
    later = every_second("later", start_time=now + timedelta(seconds=8))
    brief = every_second("brief", expires=now + timedelta(seconds=8))
    every_second("once", one_off=True)
    hour = datetime.now(NEW_YORK).hour
    new_york, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour=f"{hour},{(hour + 1) % 24}", timezone=NEW_YORK
    )
    PeriodicTask.objects.create(name="new-york", task=TASK, crontab=new_york)
    clocked_at = now + timedelta(seconds=12)
    clock = ClockedSchedule.objects.create(clocked_time=clocked_at)
    PeriodicTask.objects.create(name="clocked", task=TASK, clocked=clock, one_off=True)

    worker = processes.worker()
    beat = processes.beat("paas", scheduler=SCHEDULER)
    wait_for(lambda: beat.logged("dispatching lock="), 60, "beat to lead", beat, worker)
    every_second("added-live")

    def runs_of(entry: str) -> int:
        return sum(1 for r in read_records(processes.record_path) if r.entry == entry)

    def all_seen() -> bool:
        return all(runs_of(e) >= 1 for e in ("new-york", "clocked", "added-live", "later"))

    wait_for(all_seen, 120, "every database entry to run", beat, worker)

    def one_offs_disabled() -> bool:
        # As in stock DatabaseScheduler, a one-off is disabled when beat next looks at it after
        # its run, which may be a loop interval later: stopping beat first would leave it enabled.
        return not PeriodicTask.objects.filter(name__in=("once", "clocked"), enabled=True).exists()

    wait_for(one_offs_disabled, 30, "the one-offs that ran to be disabled", beat, worker)
    slots = each_slot_once(settled(processes, beat))
    assert "Traceback" not in beat.log(), beat.log()

    assert min(slots["later"]) >= later.start_time
    assert all(slot < brief.expires for slot in slots.get("brief", []))  # none if beat was slow
    assert len(slots["once"]) == 1
    assert slots["clocked"] == [clocked_at]
    assert slots["new-york"], "a crontab in its own time zone ran"
    assert len(slots["added-live"]) >= 1

    rows = {task.name: task for task in PeriodicTask.objects.all()}
    assert rows["tick"].total_run_count == len(slots["tick"])
    assert rows["tick"].last_run_at is not None
    assert rows["tick"].last_run_at >= slots["tick"][-1]
    assert rows["once"].enabled is False
    assert rows["clocked"].enabled is False
    assert rows["brief"].enabled is False


def test_the_schedule_source_reads_the_database_as_beat_would(django_db, unique_name, monkeypatch):
    """What preflight, quiet windows and status read: the database's entries, each with its
    own zone, and the critical globs resolved against them; nothing written."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    from beat_handover.scheduler.schedule_source import read_schedule

    # The app module sets DJANGO_SETTINGS_MODULE for its processes; not for later tests' ones.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.integrations.django_settings")
    from tests.integrations.django_app import app

    london = ZoneInfo("Europe/London")
    daily, _ = CrontabSchedule.objects.get_or_create(minute="30", hour="17", timezone=london)
    name = f"letters-{unique_name}"
    PeriodicTask.objects.create(name=name, task=TASK, crontab=daily)
    before = PeriodicTask.objects.count()
    app.conf.update(
        beat_scheduler=SCHEDULER,
        beat_lock_critical=[f"letters-{unique_name[:4]}*"],
        beat_lock_catch_up={},
    )
    try:
        schedule = read_schedule(app)
    finally:
        app.conf.update(beat_scheduler=None, beat_lock_critical=[])
    assert PeriodicTask.objects.count() == before
    assert schedule.scheduler == SCHEDULER
    assert schedule.schedules[name].tz == london
    assert name in schedule.names.critical
    assert schedule.names.policy(name) == "none"
