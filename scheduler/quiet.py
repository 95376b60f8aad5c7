"""Quiet windows: the stretches of a period in which no critical entry runs, long enough to move
beat, with the count of other runs inside each.

A critical run at ``at`` blocks ``[at - guard, at + guard]``; the rest of the period, cut into
maximal free stretches, gives the windows, of which those at least ``min_length`` long are kept.
Fire times come from :mod:`beat_handover.scheduler.firetimes`, the same function the leased
scheduler uses for its slots, so what the report promises is what beat does.

Interval entries are placed by their anchor (the entry's last claimed slot in the store,
``LeaseStore.last_claims(name)[entry].slot``), which the caller supplies. A critical entry that
cannot be placed (no anchor, or a schedule the maths does not support) is refused with an error;
other entries that cannot be placed are named in the report, never silently dropped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.entry_names import describe_names, matching
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.firetimes import fire_times, next_fire_time, utc_instant

ONE_MICROSECOND = timedelta(microseconds=1)
DEFAULT_HORIZON = timedelta(days=7)
__all__ = [
    "CriticalRun",
    "QuietReport",
    "QuietWindow",
    "describe_names",
    "next_critical_run",
    "next_quiet_window",
    "quiet_windows",
    "select_critical",
]


@dataclass(frozen=True)
class CriticalRun:
    """One run of a critical entry."""

    entry: str
    at: datetime  # aware UTC


@dataclass(frozen=True)
class QuietWindow:
    """A stretch with no critical run within the guard, and how many other runs fall inside it."""

    start: datetime  # aware UTC
    end: datetime
    noncritical_runs: int

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Unplaced:
    """A non-critical entry whose runs could not be computed, and why."""

    entry: str
    reason: str


@dataclass(frozen=True)
class QuietReport:
    """The quiet windows of one period; ``to_dict()`` is the JSON shape of the report."""

    tz: tzinfo
    start: datetime
    end: datetime
    guard: timedelta
    min_length: timedelta
    critical: tuple[str, ...]  # the entry names the critical patterns selected
    windows: tuple[QuietWindow, ...]
    critical_runs: tuple[CriticalRun, ...]  # every run whose guard reaches into the period
    phase_unknown: tuple[Unplaced, ...]  # interval entries with no anchor: not counted
    unsupported: tuple[Unplaced, ...]  # schedules the maths cannot compute: not counted
    runs_computed: int

    def to_dict(self) -> dict[str, Any]:
        def local(at: datetime) -> str:
            return at.astimezone(self.tz).isoformat()

        return {
            "timezone": zone_name(self.tz),
            "from": local(self.start),
            "to": local(self.end),
            "guard_minutes": minutes(self.guard),
            "min_length_minutes": minutes(self.min_length),
            "critical": list(self.critical),
            "windows": [
                {
                    "start": local(window.start),
                    "end": local(window.end),
                    "minutes": minutes(window.length),
                    "noncritical_runs": window.noncritical_runs,
                }
                for window in self.windows
            ],
            "critical_runs": [
                {"entry": run.entry, "at": local(run.at)} for run in self.critical_runs
            ],
            "phase_unknown": [item.entry for item in self.phase_unknown],
            "unsupported": [item.entry for item in self.unsupported],
        }


def zone_name(tz: tzinfo) -> str:
    """The IANA name of a zone (Europe/London), or its fixed name (UTC)."""
    return tz.key if isinstance(tz, ZoneInfo) else str(tz)


def minutes(length: timedelta) -> int | float:
    """A length in minutes: whole numbers stay integers in the JSON."""
    value = length / timedelta(minutes=1)
    return int(value) if value.is_integer() else round(value, 3)


def entry_schedules(beat_schedule: Mapping[str, Any]) -> dict[str, Any]:
    """Entry name -> schedule, from a ``beat_schedule`` (whose entries are dicts with a
    ``schedule`` key) or from a mapping that already holds the schedules."""
    schedules = {}
    for name, entry in beat_schedule.items():
        if isinstance(entry, Mapping):
            if "schedule" not in entry:
                raise ConfigError(
                    f"beat_schedule entry {name!r} has no 'schedule' key (got keys "
                    f"{sorted(entry)}); every entry needs one, e.g. crontab(minute=0)"
                )
            schedules[name] = entry["schedule"]
        else:
            schedules[name] = entry
    return schedules


def select_critical(
    names: Iterable[str], patterns: Sequence[str], *, setting: str = "beat_lock_critical"
) -> tuple[str, ...]:
    """The entry names matched by `patterns` (names or shell globs, case-sensitive), resolved as
    beat resolves ``beat_lock_critical`` (:func:`beat_handover.scheduler.entry_names.matching`).
    A pattern that matches nothing is an error naming `setting` and listing the known names."""
    if isinstance(patterns, str):
        raise ConfigError(f"critical entries must be a list of names or globs, got {patterns!r}")
    known = sorted(names)
    chosen = {name for pattern in patterns for name in matching(known, pattern, setting=setting)}
    return tuple(sorted(chosen))


def quiet_windows(
    beat_schedule: Mapping[str, Any],
    critical: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    tz: tzinfo,
    guard: timedelta,
    min_length: timedelta,
    anchors: Mapping[str, datetime] | None = None,
) -> QuietReport:
    """The quiet windows of ``[start, end]``. `critical` holds entry names or globs; `anchors`
    maps interval entries to their last claimed slot. Raises PhaseUnknown or UnsupportedSchedule
    (naming the entry) when a critical entry cannot be placed."""
    start, end = utc_instant(start, "start"), utc_instant(end, "end")
    _check_period(start, end, guard, min_length)
    schedules = entry_schedules(beat_schedule)
    chosen = select_critical(schedules, critical)
    if anchors is None:
        anchors = {}
    runs: list[CriticalRun] = []
    others: list[list[datetime]] = []  # each entry's runs, ascending
    phase_unknown: list[Unplaced] = []
    unsupported: list[Unplaced] = []
    for name, entry in schedules.items():
        anchor = anchors.get(name)
        if name in chosen:
            with _placing_critical(name):
                times = fire_times(
                    entry, start - guard - ONE_MICROSECOND, end + guard, tz=tz, anchor=anchor
                )
            runs.extend(CriticalRun(name, at) for at in times)
            continue
        try:
            others.append(fire_times(entry, start - ONE_MICROSECOND, end, tz=tz, anchor=anchor))
        except PhaseUnknown as exc:
            phase_unknown.append(Unplaced(name, str(exc)))
        except UnsupportedSchedule as exc:
            unsupported.append(Unplaced(name, str(exc)))
    runs.sort(key=lambda run: (run.at, run.entry))
    windows = tuple(
        QuietWindow(
            free_start,
            free_end,
            sum(bisect_right(times, free_end) - bisect_left(times, free_start) for times in others),
        )
        for free_start, free_end in _free_stretches([run.at for run in runs], start, end, guard)
        if free_end - free_start >= min_length
    )
    return QuietReport(
        tz,
        start,
        end,
        guard,
        min_length,
        chosen,
        windows,
        tuple(runs),
        tuple(phase_unknown),
        tuple(unsupported),
        len(runs) + sum(len(times) for times in others),
    )


def next_critical_run(
    beat_schedule: Mapping[str, Any],
    critical: Sequence[str],
    now: datetime,
    *,
    tz: tzinfo,
    anchors: Mapping[str, datetime] | None = None,
) -> CriticalRun | None:
    """The first run of any critical entry strictly after `now` (None if nothing is critical)."""
    schedules = entry_schedules(beat_schedule)
    if anchors is None:
        anchors = {}
    upcoming = []
    for name in select_critical(schedules, critical):
        with _placing_critical(name):
            at = next_fire_time(schedules[name], now, tz=tz, anchor=anchors.get(name))
        upcoming.append(CriticalRun(name, at))
    return min(upcoming, key=lambda run: (run.at, run.entry), default=None)


def next_quiet_window(
    beat_schedule: Mapping[str, Any],
    critical: Sequence[str],
    now: datetime,
    *,
    tz: tzinfo,
    guard: timedelta,
    min_length: timedelta,
    anchors: Mapping[str, datetime] | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> QuietWindow | None:
    """The first quiet window of ``[now, now + horizon]`` (it starts at `now` when we are inside
    one), or None. A window that reaches the horizon is cut there."""
    now = utc_instant(now, "now")
    report = quiet_windows(
        beat_schedule,
        critical,
        now,
        now + horizon,
        tz=tz,
        guard=guard,
        min_length=min_length,
        anchors=anchors,
    )
    return report.windows[0] if report.windows else None


@contextmanager
def _placing_critical(name: str) -> Iterator[None]:
    """Name the critical entry in the error when its runs cannot be placed."""
    try:
        yield
    except PhaseUnknown as exc:
        raise PhaseUnknown(
            f"critical entry {name!r}: {exc}; cannot say when it is quiet until then (or leave "
            "it out of the critical entries)"
        ) from None
    except UnsupportedSchedule as exc:
        raise UnsupportedSchedule(f"critical entry {name!r}: {exc}") from None


def _free_stretches(
    critical_at: Sequence[datetime], start: datetime, end: datetime, guard: timedelta
) -> list[tuple[datetime, datetime]]:
    """The maximal stretches of ``[start, end]`` outside every ``[at - guard, at + guard]``
    (`critical_at` ascending; all times UTC), as (start, end) pairs of positive length."""
    stretches = []
    cursor = start
    for at in critical_at:
        if at - guard > cursor:
            stretches.append((cursor, min(at - guard, end)))
        cursor = max(cursor, at + guard)
        if cursor >= end:
            break
    if cursor < end:
        stretches.append((cursor, end))
    return stretches


def _check_period(start: datetime, end: datetime, guard: timedelta, min_length: timedelta) -> None:
    if end <= start:
        raise ConfigError(
            f"the period ends ({end.isoformat()}) before or when it starts "
            f"({start.isoformat()}); give an end later than the start"
        )
    if guard < timedelta(0):
        raise ConfigError(f"guard must be zero or more, got {guard}")
    if min_length < timedelta(0):
        raise ConfigError(f"minimum window length must be zero or more, got {min_length}")
