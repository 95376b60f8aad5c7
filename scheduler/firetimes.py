"""When a beat schedule entry fires: one answer for the leased scheduler and the quiet windows.

Crontab entries are computed in the app's time zone. croniter picks the local calendar days on
which an entry fires (with Celery's rule that day-of-month AND day-of-week must both match,
croniter's ``day_or=False``); each of those days contributes the product of the entry's hours and
minutes as local wall-clock times, and each wall time is mapped to real instants by the daylight
saving rules of DESIGN.md:

* an ordinary wall time is one instant;
* a wall time that does not exist (spring forward) fires once, at the first instant after the gap,
  if the hour field names specific hours ("fixed-time"), and not at all if the hour field covers
  all 24 hours ("wildcard hour": no real instant has that local time);
* a wall time that occurs twice (fall back) fires once, at its first occurrence, for fixed-time
  entries, and at both occurrences for wildcard-hour entries.

So ``crontab(minute=30, hour=1)`` in Europe/London fires at 02:00 BST on the spring change day and
at the first 01:30 on the autumn one, while ``crontab(minute=0)`` fires 23 and 25 times on those
days. Several wall times that map to one instant (two fixed times inside one gap) fire once.

Interval entries (``timedelta``, a number of seconds, ``celery.schedules.schedule``) fire at
``anchor + k * run_every`` for every integer k, where the anchor is the entry's last claimed slot
(or, before its first claim, the moment the leader first saw it, as stock beat counts from its
start); without one the phase is unknown (:class:`~beat_handover.scheduler.errors.PhaseUnknown`).
Relative intervals, solar events, django-celery-beat's ``clocked`` and custom schedules that name
their own fire times are stepped (:mod:`beat_handover.scheduler.stepped`): Celery's own
computation at a stopped clock. django-celery-beat's ``TzAwareCrontab`` is a crontab computed in
its own time zone instead of the app's. Any other schedule class raises
:class:`~beat_handover.scheduler.errors.UnsupportedSchedule` naming why and what to do.

Every time returned is an aware UTC datetime. Offsets are assumed to change at most once within
any local hour (true of every zone in the tz database).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from celery.schedules import crontab
from croniter import croniter
from croniter.croniter import CroniterBadDateError

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.stepped import TZ_AWARE_CRONTAB, Stepper, known_base, stepper_of

ONE_DAY = timedelta(days=1)
ONE_SECOND = timedelta(seconds=1)
WALL_STEPS = tuple(timedelta(minutes=minute) for minute in range(24 * 60))  # from midnight
# An interval listed over a long period can describe more runs than memory holds.
MAX_INTERVAL_RUNS = 5_000_000
# A relative interval is stepped from a little before the period, counted from its anchor.
RELATIVE_LEAD_STEPS = 2


@dataclass(frozen=True)
class CronFields:
    """A crontab as the fire-time maths sees it: expanded minutes and hours, croniter day rule."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: str  # croniter expression "0 0 DOM MONTH DOW" naming the local days that fire
    steps: tuple[timedelta, ...]  # each wall time of a firing day, from local midnight

    @property
    def wildcard_hour(self) -> bool:
        return len(self.hours) == 24

    @classmethod
    def of(cls, entry: crontab) -> CronFields:
        def field(values: set[int], full: int) -> str:
            return "*" if len(values) == full else ",".join(map(str, sorted(values)))

        # Celery numbers days of the week 0-6 from Sunday, as croniter does.
        days = (
            f"0 0 {field(entry.day_of_month, 31)} {field(entry.month_of_year, 12)} "
            f"{field(entry.day_of_week, 7)}"
        )
        minutes, hours = tuple(sorted(entry.minute)), tuple(sorted(entry.hour))
        steps = tuple(WALL_STEPS[hour * 60 + minute] for hour in hours for minute in minutes)
        return cls(minutes, hours, days, steps)


def fire_times(
    schedule: Any, start: datetime, end: datetime, *, tz: tzinfo, anchor: datetime | None = None
) -> list[datetime]:
    """Every instant t with start < t <= end (half-open, both aware) at which `schedule` fires, as
    aware UTC datetimes, ascending. crontab: croniter semantics with Celery's day-of-month AND
    day-of-week (day_or=False), computed in `tz` (the app's timezone; a TzAwareCrontab's own zone)
    with the DST rules of DESIGN.md. Interval: anchor + k*run_every for every integer k (anchor =
    the entry's last claimed slot); anchor None -> raises PhaseUnknown. Relative interval, solar,
    clocked, custom: stepped (beat_handover.scheduler.stepped). Others: UnsupportedSchedule."""
    start, end = utc_instant(start, "start"), utc_instant(end, "end")
    _require_tz(tz)
    kind = _kind(schedule, tz)
    if isinstance(kind, timedelta):
        return _interval_times(kind, start, end, anchor)
    if end <= start:
        return []
    if isinstance(kind, Stepper):
        runs = []
        for at in _stepped_after(kind, start, anchor):
            if at > end:
                break
            runs.append(at)
        return runs
    fields, zone = kind
    first = start.astimezone(zone).date() - ONE_DAY
    last = end.astimezone(zone).date() + ONE_DAY
    runs = []
    for day in _firing_days(fields.days, first, last):
        runs.extend(_day_times(fields, day, zone))
    return runs[bisect_right(runs, start) : bisect_right(runs, end)]


def next_fire_time(
    schedule: Any, after: datetime, *, tz: tzinfo, anchor: datetime | None = None
) -> datetime | None:
    """The first fire time strictly after `after` (same rules), aware UTC; None if the schedule
    never fires again (a clocked time that has passed)."""
    after = utc_instant(after, "after")
    _require_tz(tz)
    kind = _kind(schedule, tz)
    if isinstance(kind, timedelta):
        anchor = _require_anchor(kind, anchor)
        return anchor + ((after - anchor) // kind + 1) * kind
    if isinstance(kind, Stepper):
        return next(_stepped_after(kind, after, anchor), None)
    fields, zone = kind
    for day in _days_from(fields.days, after.astimezone(zone).date() - ONE_DAY):
        for run in _day_times(fields, day, zone):
            if run > after:
                return run
    raise UnsupportedSchedule(
        f"{schedule!r} never fires after {after.isoformat()}: no day matches its day-of-month, "
        "month and day-of-week together within 50 years; fix the entry's crontab"
    )


def _kind(schedule: Any, tz: tzinfo) -> tuple[CronFields, tzinfo] | timedelta | Stepper:
    """The crontab fields and zone, the interval, or the stepper of `schedule`;
    UnsupportedSchedule for anything else."""
    if isinstance(schedule, timedelta):
        run_every = schedule
    elif isinstance(schedule, int | float) and not isinstance(schedule, bool):
        run_every = timedelta(seconds=schedule)
    else:
        stepper = stepper_of(schedule, tz)
        if stepper is not None:
            return stepper
        if isinstance(schedule, crontab):
            own = known_base(schedule) == TZ_AWARE_CRONTAB and isinstance(schedule.tz, tzinfo)
            return CronFields.of(schedule), schedule.tz if own else tz
        run_every = schedule.run_every  # a celery.schedules.schedule: stepper_of let it through
    if run_every <= timedelta(0):
        raise ConfigError(
            f"interval schedule of {run_every} never advances: give it a positive run_every"
        )
    return run_every


def _stepped_after(
    stepper: Stepper, start: datetime, anchor: datetime | None
) -> Iterator[datetime]:
    """The fire times of a stepped schedule strictly after `start`, ascending. A relative
    interval steps from its anchor's phase, jumping whole intervals to just before `start`."""
    at = start
    if stepper.run_every is not None:
        anchor = _require_anchor(stepper.run_every, anchor)
        jumps = max((start - anchor) // stepper.run_every - RELATIVE_LEAD_STEPS, 0)
        at = min(anchor + jumps * stepper.run_every, start)
    for _ in range(MAX_INTERVAL_RUNS):
        following = stepper.step(at)
        if following is None:
            return
        at = following
        if at > start:
            yield at
    raise UnsupportedSchedule(
        f"stepping the schedule from {start.isoformat()} took more than {MAX_INTERVAL_RUNS} "
        "steps; ask about a shorter period"
    )


def _interval_times(
    run_every: timedelta, start: datetime, end: datetime, anchor: datetime | None
) -> list[datetime]:
    anchor = _require_anchor(run_every, anchor)
    first = (start - anchor) // run_every + 1
    last = (end - anchor) // run_every
    if last - first + 1 > MAX_INTERVAL_RUNS:
        raise UnsupportedSchedule(
            f"interval schedule of {run_every} fires {last - first + 1} times between "
            f"{start.isoformat()} and {end.isoformat()}, more than the {MAX_INTERVAL_RUNS} runs "
            "the fire-time maths lists at once; ask about a shorter period"
        )
    at = anchor + first * run_every
    runs = []
    for _ in range(first, last + 1):
        runs.append(at)
        at += run_every
    return runs


def _require_anchor(run_every: timedelta, anchor: datetime | None) -> datetime:
    if anchor is None:
        raise PhaseUnknown(
            f"interval schedule (every {run_every}) has no anchor: its phase is "
            "unknown until the lease store has a claimed slot for the entry (after beat has "
            "sent it once through the leased scheduler)"
        )
    return utc_instant(anchor, "anchor")


def utc_instant(value: datetime, name: str) -> datetime:
    """`value` (aware) in UTC, else ConfigError. Python subtracts and compares two datetimes that
    share a tzinfo by their wall clocks, not as instants, so all arithmetic here is done in UTC."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigError(
            f"{name} must be a timezone-aware datetime (e.g. with tzinfo=timezone.utc), "
            f"got {value!r}"
        )
    return value.astimezone(UTC)


def _require_tz(tz: tzinfo) -> None:
    if not isinstance(tz, tzinfo):
        raise ConfigError(
            f"tz must be a tzinfo such as zoneinfo.ZoneInfo('Europe/London'), got {tz!r}"
        )


@lru_cache(maxsize=1024)
def _firing_days(days: str, first: date, last: date) -> tuple[date, ...]:
    """The local days from `first` to `last` (inclusive) on which the croniter day rule fires."""
    found = []
    for day in _days_from(days, first):
        if day > last:
            break
        found.append(day)
    return tuple(found)


def _days_from(days: str, first: date) -> Iterator[date]:
    """Days matching `days` from `first` on, through croniter over naive midnights: pure calendar
    arithmetic, no time zone, so croniter's own DST handling never comes into play."""
    cron = croniter(
        days,
        datetime(first.year, first.month, first.day) - ONE_SECOND,
        day_or=False,
        ret_type=datetime,
    )
    while True:
        try:
            yield cron.get_next().date()
        except CroniterBadDateError:
            return


def _day_times(fields: CronFields, day: date, tz: tzinfo) -> list[datetime]:
    """The instants at which `fields` fires on local `day`, ascending, each once."""
    offset = _day_offset(tz, day)
    if offset is not None:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
        return [midnight + step for step in fields.steps]
    runs: list[datetime] = []
    regular = True
    for hour in fields.hours:
        offset = _hour_offset(tz, day, hour)
        if offset is not None:
            base = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - offset
            runs.extend([base + WALL_STEPS[minute] for minute in fields.minutes])
            continue
        regular = False
        for minute in fields.minutes:
            wall = datetime(day.year, day.month, day.day, hour, minute)
            runs.extend(_wall_instants(wall, tz, wildcard_hour=fields.wildcard_hour))
    return runs if regular else sorted(set(runs))


@lru_cache(maxsize=4096)
def _day_offset(tz: tzinfo, day: date) -> timedelta | None:
    """The one UTC offset of every whole minute of local `day`, or None on a change day."""
    offsets = {_hour_offset(tz, day, hour) for hour in range(24)}
    return offsets.pop() if len(offsets) == 1 else None


@lru_cache(maxsize=16384)
def _hour_offset(tz: tzinfo, day: date, hour: int) -> timedelta | None:
    """The UTC offset every whole minute of this local hour has, or None if the hour has a gap,
    a fold or a change of offset (then each wall time is mapped on its own)."""
    first = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
    last = first.replace(minute=59)
    offsets = {
        first.utcoffset(),
        first.replace(fold=1).utcoffset(),
        last.utcoffset(),
        last.replace(fold=1).utcoffset(),
    }
    return offsets.pop() if len(offsets) == 1 else None


def _wall_instants(wall: datetime, tz: tzinfo, *, wildcard_hour: bool) -> list[datetime]:
    """The instants at which a run at local wall time `wall` (naive) fires, by the DST rules."""
    candidates = {_as_utc(wall, tz, fold) for fold in (0, 1)}
    real = sorted(at for at in candidates if _local_wall(at, tz) == wall)
    if real:
        return real if wildcard_hour else real[:1]
    return [] if wildcard_hour else [_gap_end(min(candidates), max(candidates), tz)]


def _as_utc(wall: datetime, tz: tzinfo, fold: int) -> datetime:
    offset = wall.replace(tzinfo=tz, fold=fold).utcoffset()
    return (wall - offset).replace(tzinfo=UTC)


def _local_wall(at: datetime, tz: tzinfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None, fold=0)


def _gap_end(before: datetime, after: datetime, tz: tzinfo) -> datetime:
    """The instant the offset changes between `before` (still the old offset) and `after` (the
    new one): the first instant after a gap. Offsets change on whole seconds, so bisect them."""
    old = before.astimezone(tz).utcoffset()
    while after - before > ONE_SECOND:
        middle = before + ((after - before) // ONE_SECOND // 2) * ONE_SECOND
        if middle.astimezone(tz).utcoffset() == old:
            before = middle
        else:
            after = middle
    return after
