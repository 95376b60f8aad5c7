"""The quiet-window report as a table for people: each window in local time and UTC with its
length and the runs inside, and the critical runs that separate the windows. (The JSON for tools
is the report's own, :meth:`beat_handover.scheduler.quiet.QuietReport.to_dict`.)"""

from __future__ import annotations

import textwrap
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, tzinfo

from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.quiet import CriticalRun, QuietReport, QuietWindow, zone_name

WIDTH = 100
NBSP = "\u00a0"
ENTRIES_NAMED = 6  # a window's busiest entries named in the table (--json has them all)


def render_table(report: QuietReport, *, phase_unknown_reason: str) -> str:
    """The report as lines of text. `phase_unknown_reason` says why interval entries had no
    anchor (e.g. the lease store could not be read)."""
    tz = report.tz
    guard = format_duration(report.guard.total_seconds())
    min_length = format_duration(report.min_length.total_seconds())
    lines = [
        f"Quiet windows in {zone_name(tz)} from {_local(report.start, tz, year=True)} "
        f"to {_local(report.end, tz, year=True)}",
        *_wrap(
            f"Critical: {', '.join(report.critical) if report.critical else '(none)'}; guard "
            f"{guard} either side of each critical run; windows of at least {min_length}."
        ),
        "",
    ]
    rows = [("START (local)", "END (local)", "UTC", "LENGTH", "RUNS INSIDE")]
    row_of_window = []
    for window in report.windows:
        row_of_window.append(len(rows))
        rows.append(
            (
                _local(window.start, tz),
                _local(window.end, tz),
                f"{_utc(window.start)} - {_utc(window.end)}",
                format_duration(window.length.total_seconds()),
                str(window.noncritical_runs),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    table = [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if report.windows:
        lines.append(table[0])
    runs = report.critical_runs
    run_times = [run.at for run in runs]
    shown = 0
    for window, row in zip(report.windows, row_of_window, strict=True):
        before = bisect_right(run_times, window.start, lo=shown)
        lines.extend(_critical_lines(runs[shown:before], tz))
        shown = before
        lines.append(table[row])
        lines.extend(_runs_line(window))
    lines.extend(_critical_lines(runs[shown:], tz))
    if not report.windows:
        lines.append(f"  No quiet window of at least {min_length} in this period:")
        lines.extend(_wrap(report.no_window_reason() + ".", indent="    "))
    if report.phase_unknown:
        lines += [
            "",
            *_wrap(
                f"Not counted, phase unknown ({phase_unknown_reason}): "
                + ", ".join(item.entry for item in report.phase_unknown)
            ),
        ]
    for item in report.unsupported:
        lines += ["", *_wrap(f"Not counted, unsupported schedule: {item.entry}: {item.reason}")]
    return "\n".join(lines)


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    )


def _runs_line(window: QuietWindow) -> list[str]:
    """The window's other runs per entry, most first; the first few entries by name."""
    if not window.runs_by_entry:
        return []
    named = [f"{entry} {count}" for entry, count in window.runs_by_entry[:ENTRIES_NAMED]]
    rest = window.runs_by_entry[ENTRIES_NAMED:]
    if rest:
        named.append(f"{len(rest)} more entries {sum(count for _, count in rest)}")
    # An entry and its count stay on one line: wrap at the commas only.
    text = f"runs inside: {', '.join(item.replace(' ', NBSP) for item in named)}"
    return [line.replace(NBSP, " ") for line in _wrap(text, indent="      ")]


def _critical_lines(runs: Sequence[CriticalRun], tz: tzinfo) -> list[str]:
    """One line per critical entry between two windows: its run, or how many and from when."""
    by_entry: dict[str, list[datetime]] = {}
    for run in runs:
        by_entry.setdefault(run.entry, []).append(run.at)
    lines = []
    for entry, times in sorted(by_entry.items(), key=lambda item: (item[1][0], item[0])):
        if len(times) == 1:
            when = f"{_local(times[0], tz)} ({_utc(times[0])} UTC)"
        else:
            when = (
                f"{len(times)} runs, {_local(times[0], tz)} to {_local(times[-1], tz)} "
                f"({_utc(times[0])} - {_utc(times[-1])} UTC)"
            )
        lines.extend(_wrap(f"critical {entry}: {when}", indent="      "))
    return lines


def _local(at: datetime, tz: tzinfo, *, year: bool = False) -> str:
    day = "%a %d %b %Y" if year else "%a %d %b"
    return at.astimezone(tz).strftime(f"{day} {_clock(at)} %Z")


def _utc(at: datetime) -> str:
    return at.strftime(f"%d %b {_clock(at)}")


def _clock(at: datetime) -> str:
    return "%H:%M:%S" if at.second or at.microsecond else "%H:%M"
