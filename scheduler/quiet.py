"""Quiet windows: the stretches of a period in which no critical entry runs, long enough to move
beat, with the count of other runs inside each.

A critical run at ``at`` blocks ``[at - guard, at + guard]``; the rest of the period, cut into
maximal free stretches, gives the windows, of which those at least ``min_length`` long are kept.
The handover's preflight asks the same question of one instant (:func:`quiet_at`): now is quiet
when a window of the handover's length starts now, so a critical run that has just fired blocks
a handover as surely as one about to fire. When a period has no window, :func:`crowding` says
which critical entries leave none.
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.entry_names import describe_names, matching
from beat_handover.scheduler.errors import PhaseUnknown, UnsupportedSchedule
from beat_handover.scheduler.firetimes import fire_times, next_fire_time, utc_instant

ONE_MICROSECOND = timedelta(microseconds=1)
DEFAULT_HORIZON = timedelta(days=7)
__all__ = [
    "CriticalRun",
    "Crowding",
    "QuietNow",
    "QuietReport",
    "QuietWindow",
    "describe_names",
    "next_critical_run",
    "next_quiet_window",
    "quiet_at",
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
    """A stretch with no critical run within the guard, and how many other runs fall inside it,
    in all and per entry (most runs first)."""

    start: datetime  # aware UTC
    end: datetime
    noncritical_runs: int
    runs_by_entry: tuple[tuple[str, int], ...] = ()

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Crowding:
    """A critical entry whose runs alone leave no quiet window in a period."""

    entry: str
    runs: int  # its runs whose guard reaches into the period
    longest_gap: timedelta | None  # the longest time between two of them (None: fewer than 2)

    def describe(self) -> str:
        if self.longest_gap is None:
            return f"{self.entry} runs once, its guard covering the whole period"
        return f"{self.entry} runs at most {_duration(self.longest_gap)} apart"


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
    # Each other entry's runs in the period, ascending: what the page draws as density.
    other_runs: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict, compare=False)

    @property
    def crowded_by(self) -> tuple[Crowding, ...]:
        """When the period has no window: the critical entries that alone leave none (empty
        if it takes several together, or if there is a window)."""
        if self.windows:
            return ()
        return crowding(self.critical_runs, self.start, self.end, self.guard, self.min_length)

    def no_window_reason(self) -> str:
        """Why the period has no window, in one sentence (empty if it has one)."""
        if self.windows:
            return ""
        return no_window_reason(
            self.critical_runs, self.start, self.end, self.guard, self.min_length
        )

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
                    "runs_by_entry": dict(window.runs_by_entry),
                }
                for window in self.windows
            ],
            "no_window_because": self.no_window_reason() or None,
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
    others: dict[str, list[datetime]] = {}  # each entry's runs, ascending
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
            others[name] = fire_times(entry, start - ONE_MICROSECOND, end, tz=tz, anchor=anchor)
        except PhaseUnknown as exc:
            phase_unknown.append(Unplaced(name, str(exc)))
        except UnsupportedSchedule as exc:
            unsupported.append(Unplaced(name, str(exc)))
    runs.sort(key=lambda run: (run.at, run.entry))
    windows = tuple(
        _window(free_start, free_end, others)
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
        len(runs) + sum(len(times) for times in others.values()),
        {name: tuple(times) for name, times in others.items()},
    )


def _window(start: datetime, end: datetime, others: Mapping[str, list[datetime]]) -> QuietWindow:
    counts = {
        name: bisect_right(times, end) - bisect_left(times, start) for name, times in others.items()
    }
    by_entry = sorted(
        ((name, count) for name, count in counts.items() if count),
        key=lambda item: (-item[1], item[0]),
    )
    return QuietWindow(start, end, sum(counts.values()), tuple(by_entry))


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
    return quiet_at(
        beat_schedule,
        critical,
        now,
        tz=tz,
        guard=guard,
        min_length=min_length,
        anchors=anchors,
        horizon=horizon,
    ).window


@dataclass(frozen=True)
class QuietNow:
    """Whether a window of the wanted length starts at ``now``, by the report's rule, and if
    not, which critical runs prevent it and when the next window starts (or why none can)."""

    now: datetime
    blocking: tuple[CriticalRun, ...]  # runs whose guard reaches into [now, now + min_length]
    window: QuietWindow | None  # the window starting now, else the next within the horizon
    no_window_reason: str  # when there is no window: which critical entries leave none
    crowded: bool  # some critical entry alone leaves no window: waiting cannot help

    @property
    def quiet(self) -> bool:
        return self.window is not None and self.window.start == self.now


def quiet_at(
    beat_schedule: Mapping[str, Any],
    critical: Sequence[str],
    now: datetime,
    *,
    tz: tzinfo,
    guard: timedelta,
    min_length: timedelta,
    anchors: Mapping[str, datetime] | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> QuietNow:
    """The report of ``[now, now + horizon]`` read at its first instant: now is quiet when its
    first window starts at ``now``; the runs that block it are those that fired less than
    `guard` ago or fire before ``now + min_length + guard``."""
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
    blocking = tuple(
        run for run in report.critical_runs if now - guard < run.at < now + min_length + guard
    )
    return QuietNow(
        now,
        blocking,
        report.windows[0] if report.windows else None,
        report.no_window_reason(),
        bool(report.crowded_by),
    )


def crowding(
    runs: Sequence[CriticalRun],
    start: datetime,
    end: datetime,
    guard: timedelta,
    min_length: timedelta,
) -> tuple[Crowding, ...]:
    """The critical entries whose runs (ascending), each entry on its own, leave no free
    stretch of `min_length` in ``[start, end]``."""
    by_entry: dict[str, list[datetime]] = {}
    for run in runs:
        by_entry.setdefault(run.entry, []).append(run.at)
    crowded = []
    for entry, times in sorted(by_entry.items()):
        stretches = _free_stretches(times, start, end, guard)
        if all(free_end - free_start < min_length for free_start, free_end in stretches):
            gaps = [later - earlier for earlier, later in pairwise(times)]
            crowded.append(Crowding(entry, len(times), max(gaps, default=None)))
    return tuple(crowded)


def no_window_reason(
    runs: Sequence[CriticalRun],
    start: datetime,
    end: datetime,
    guard: timedelta,
    min_length: timedelta,
) -> str:
    """Which critical entries leave no window of `min_length` in ``[start, end]``: those that
    do it alone, else all those with runs there, together."""
    need = (
        f"a window of {_duration(min_length)} needs {_duration(2 * guard + min_length)} between "
        f"two critical runs (the {_duration(guard)} guard on both sides)"
    )
    alone = crowding(runs, start, end, guard, min_length)
    if alone:
        return f"{'; '.join(item.describe() for item in alone)}, and {need}"
    entries = sorted({run.entry for run in runs})
    return f"{', '.join(entries)} together leave no gap long enough: {need}"


def _duration(length: timedelta) -> str:
    return format_duration(length.total_seconds())


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
