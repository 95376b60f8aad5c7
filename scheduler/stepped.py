"""Schedules whose next fire time is asked one step at a time: relative intervals and solar events
(Celery's own computation, at a fixed clock), django-celery-beat's ``clocked`` (one instant), and
custom schedule classes that name their own fire times with ``next_fire_time(after)``.

Celery asks a schedule ``remaining_estimate(last_run_at)`` against its clock ``now()``. Beat sets
``last_run_at`` to the moment it sends, so "the run after a run at t" is ``t +
remaining_estimate(t)`` with the clock stopped at t: a pure function of t, the same in every
environment, which is what a slot needs. Only what stock beat's loop adds on its own (a run sent a
few milliseconds late moves a relative entry's base by as much) is left out.

Solar events come from ephem's iterative search, whose answer moves by a tenth of a second with
the instant the search starts from; a slot must be named the same by every environment, so the
search is repeated from a canonical start (six hours before the event's whole minute) and the
answer is cut to the whole second. A solar slot is therefore up to a second earlier than stock
beat's send.

Which schedules are recognised, and why others are refused, is in :func:`stepper_of` and
:func:`unsupported_reason`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from beat_handover.scheduler.errors import UnsupportedSchedule

Step = Callable[[datetime], datetime | None]

# Schedule classes whose computation is known, nearest first when walking a class's MRO; named by
# import path so django-celery-beat need not be installed for the others.
TZ_AWARE_CRONTAB = "django_celery_beat.tzcrontab.TzAwareCrontab"
CLOCKED = "django_celery_beat.clockedschedule.clocked"
CRONTAB = "celery.schedules.crontab"
SOLAR = "celery.schedules.solar"
INTERVAL = "celery.schedules.schedule"
KNOWN = (TZ_AWARE_CRONTAB, CLOCKED, CRONTAB, SOLAR, INTERVAL)
OWN_STEP = "next_fire_time"  # the method a custom schedule class provides to be dispatched
SOLAR_SEARCH_BACK = timedelta(hours=6)
ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Stepper:
    """The first fire time strictly after an instant, one step at a time. ``run_every`` is set
    for relative intervals, whose phase comes from the anchor."""

    step: Step
    run_every: timedelta | None = None


def known_base(schedule: Any) -> str | None:
    """The import path of the nearest known schedule class `schedule` is an instance of."""
    known = _known_class(schedule)
    return None if known is None else _path(known)


def _known_class(schedule: Any) -> type | None:
    return next((cls for cls in type(schedule).__mro__ if _path(cls) in KNOWN), None)


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def unsupported_reason(schedule: Any) -> str | None:
    """Why the fire times of `schedule` cannot be named in advance, or None if they can."""
    if callable(getattr(schedule, OWN_STEP, None)):
        return None
    known = _known_class(schedule)
    if known is None:
        return (
            f"{type(schedule).__name__} schedule {schedule!r} is not a schedule type whose fire "
            "times can be named in advance (crontab, celery.schedules.schedule, solar, "
            "django-celery-beat's clocked); use one of those, or give the class a "
            f"{OWN_STEP}(after) method (docs/schedules.md)"
        )
    overridden = [
        name
        for name in ("is_due", "remaining_estimate")
        if getattr(type(schedule), name) is not getattr(known, name)
    ]
    if overridden:
        return (
            f"{type(schedule).__name__} overrides {' and '.join(overridden)} of "
            f"{known.__name__}, so its fire times cannot be named in advance and every "
            "environment could name a run differently; give the class a "
            f"{OWN_STEP}(after) method that returns the first fire time after `after` "
            "(docs/schedules.md), or use the schedule type unchanged"
        )
    return None


def stepper_of(schedule: Any, tz: tzinfo) -> Stepper | None:
    """How to step `schedule` in the app's zone `tz` (Celery rounds relative intervals to local
    boundaries), or None if it is a crontab or plain interval (computed in
    :mod:`beat_handover.scheduler.firetimes`). Raises UnsupportedSchedule with the reason."""
    reason = unsupported_reason(schedule)
    if reason is not None:
        raise UnsupportedSchedule(reason)
    if callable(getattr(schedule, OWN_STEP, None)):
        return Stepper(_own_step(schedule))
    base = known_base(schedule)
    if base == CLOCKED:
        at = schedule.clocked_time.astimezone(UTC)
        return Stepper(lambda after: at if at > after else None)
    if base == SOLAR:
        return Stepper(_solar_step(schedule))
    if base == INTERVAL and schedule.relative:
        return Stepper(_celery_step(schedule, tz), run_every=schedule.run_every)
    return None


def _own_step(schedule: Any) -> Step:
    def step(after: datetime) -> datetime | None:
        at = getattr(schedule, OWN_STEP)(after)
        if at is None:
            return None
        if not isinstance(at, datetime) or at.utcoffset() is None or at <= after:
            raise UnsupportedSchedule(
                f"{type(schedule).__name__}.{OWN_STEP}({after.isoformat()}) returned {at!r}; it "
                "must return an aware datetime later than its argument, or None"
            )
        return at.astimezone(UTC)

    return step


def _at_clock(schedule: Any, now: datetime) -> Any:
    """A copy of `schedule` whose clock is stopped at `now`."""
    stopped = copy.copy(schedule)
    stopped.nowfun = lambda: now
    return stopped


def _celery_step(schedule: Any, tz: tzinfo) -> Step:
    def step(after: datetime) -> datetime:
        local = after.astimezone(tz)
        at = (after + _at_clock(schedule, local).remaining_estimate(local)).astimezone(UTC)
        # Sub-second intervals and zones whose boundaries fold back can answer `after` itself.
        return at if at > after else after + schedule.run_every

    return step


def _solar_step(schedule: Any) -> Step:
    def raw(after: datetime) -> datetime:
        return (after + _at_clock(schedule, after).remaining_estimate(after)).astimezone(UTC)

    def step(after: datetime) -> datetime:
        start = after
        for _ in range(3):
            event = raw(start)
            canonical = event.replace(second=0, microsecond=0) - SOLAR_SEARCH_BACK
            named = raw(canonical).replace(microsecond=0)
            if named > after:
                return named
            start = max(event, after) + ONE_SECOND
        raise UnsupportedSchedule(f"{schedule!r} finds no event after {after.isoformat()}")

    return step
