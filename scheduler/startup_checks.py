"""What the leased scheduler refuses at start, each with one line naming the value, why and what to
do: a time zone Celery cannot load, a ``beat_schedule`` entry that is not a schedule, and a
schedule whose fire times cannot be named in advance (so it could never be fenced; beat refuses
rather than run it as something else)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, tzinfo
from typing import Any

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.stepped import unsupported_reason

SCHEDULE_EXAMPLES = "crontab(minute=0), a number of seconds, a timedelta or celery's schedule()"


def app_timezone(app: Any) -> tzinfo:
    """The zone beat computes crontabs in (``app.timezone``: ``timezone``, UTC when unset and
    ``enable_utc`` is on, else the host's zone); ConfigError naming a zone Celery cannot load."""
    try:
        return app.timezone
    except Exception as exc:
        raise ConfigError(
            f"app.conf.timezone {app.conf.timezone!r} is not a time zone Celery can load "
            f"({type(exc).__name__}: {exc}); use an IANA name such as Europe/London or UTC"
        ) from None


def check_beat_schedule(beat_schedule: Any) -> None:
    """``app.conf.beat_schedule`` as Celery reads it: entry name -> dict with a task and a
    schedule. Checked before Celery builds entries from it, which would fail with a traceback."""
    if beat_schedule is None:
        return
    if not isinstance(beat_schedule, Mapping):
        raise ConfigError(
            f"app.conf.beat_schedule must map entry names to entries, got "
            f"{type(beat_schedule).__name__} {beat_schedule!r}"
        )
    for name, entry in beat_schedule.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"beat_schedule entry {name!r} must be a dict with 'task' and 'schedule', got "
                f"{type(entry).__name__} {entry!r}"
            )
        missing = [key for key in ("task", "schedule") if key not in entry]
        if missing:
            raise ConfigError(
                f"beat_schedule entry {name!r} has no {' or '.join(map(repr, missing))} (keys: "
                f"{', '.join(map(repr, sorted(entry)))}); every entry needs a task name and a "
                f"schedule such as {SCHEDULE_EXAMPLES}"
            )
        check_schedule_value(name, entry["schedule"])


def check_schedule_value(name: str, schedule: Any) -> None:
    """A schedule value is a positive number of seconds, a positive timedelta, or an object with
    Celery's schedule interface (``is_due``) whose fire times can be named in advance."""
    if isinstance(schedule, bool) or schedule is None:
        raise ConfigError(f"beat_schedule entry {name!r}: schedule {schedule!r} is not a schedule")
    if isinstance(schedule, int | float | timedelta):
        seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        if not seconds > 0:
            raise ConfigError(
                f"beat_schedule entry {name!r}: an interval of {schedule!r} never advances; give "
                "a positive number of seconds or timedelta"
            )
        return
    if not callable(getattr(schedule, "is_due", None)):
        raise ConfigError(
            f"beat_schedule entry {name!r}: schedule {schedule!r} ({type(schedule).__name__}) is "
            f"not a schedule; use {SCHEDULE_EXAMPLES}"
        )
    reason = unsupported_reason(schedule)
    if reason is not None:
        raise ConfigError(f"beat_schedule entry {name!r} cannot be fenced: {reason}")


def check_entries(entries: Mapping[str, Any]) -> None:
    """Every entry the scheduler holds (``beat_schedule`` and any other source) can be fenced."""
    for name, entry in entries.items():
        check_schedule_value(name, entry.schedule)
