"""Properties of quiet windows over random schedules: windows never overlap a guarded critical
run, they are exactly the free stretches of the period that are long enough, and the run counts
are the runs inside them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from hypothesis import given, settings
from hypothesis import strategies as st

from beat_handover.scheduler.firetimes import fire_times
from beat_handover.scheduler.quiet import QuietReport, quiet_windows

LONDON = ZoneInfo("Europe/London")


@st.composite
def entries(draw: st.DrawFn) -> tuple[object, datetime | None]:
    """A crontab with a few minutes and hours, or an anchored interval."""
    if draw(st.booleans()):
        minutes = draw(st.sets(st.integers(0, 59), min_size=1, max_size=4))
        hours = draw(st.one_of(st.just("*"), st.sets(st.integers(0, 23), min_size=1, max_size=6)))
        return crontab(minute=minutes, hour=hours), None
    every = draw(st.timedeltas(min_value=timedelta(minutes=7), max_value=timedelta(hours=9)))
    anchor = datetime(2026, 3, 1, tzinfo=UTC) + draw(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))
    )
    return every, anchor


@st.composite
def cases(draw: st.DrawFn) -> dict:
    drawn = draw(st.lists(entries(), min_size=1, max_size=6))
    schedules = {f"e{index}": entry for index, (entry, _) in enumerate(drawn)}
    anchors = {f"e{index}": anchor for index, (_, anchor) in enumerate(drawn) if anchor}
    critical = draw(st.sets(st.sampled_from(sorted(schedules)), min_size=1))
    start = draw(
        st.datetimes(
            min_value=datetime(2026, 3, 27), max_value=datetime(2026, 3, 31), timezones=st.just(UTC)
        )
    )
    end = start + draw(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=2)))
    tz = draw(st.sampled_from([UTC, LONDON]))
    return {
        "schedules": schedules,
        "anchors": anchors,
        "critical": sorted(critical),
        "start": start,  # UTC, for the test's own arithmetic
        "end": end,
        "local": (start.astimezone(tz), end.astimezone(tz)),  # what the report is given
        "tz": tz,
        "guard": draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2))),
        "min_length": draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3))),
    }


def report_of(case: dict) -> QuietReport:
    return quiet_windows(
        case["schedules"],
        case["critical"],
        *case["local"],
        tz=case["tz"],
        guard=case["guard"],
        min_length=case["min_length"],
        anchors=case["anchors"],
    )


@settings(max_examples=150, deadline=None)
@given(cases())
def test_windows_are_exactly_the_long_enough_free_stretches(case: dict) -> None:
    report = report_of(case)
    start, end, guard = case["start"], case["end"], case["guard"]
    critical_at = [run.at for run in report.critical_runs]
    windows = report.windows

    # Windows lie in the period, in order, each at least min-length and never empty.
    assert all(start <= w.start < w.end <= end for w in windows)
    assert all(a.end <= b.start for a, b in pairwise(windows))  # they touch when guard is 0
    assert all(w.length >= case["min_length"] for w in windows)
    # No window overlaps a guarded critical run.
    assert all(w.end <= at - guard or w.start >= at + guard for w in windows for at in critical_at)

    # Every point of the period strictly between two edges is in a window exactly when it is
    # free and its free stretch (edge to edge) is long enough: the rest of the period is covered.
    edges = sorted(
        {start, end} | {min(max(at + d, start), end) for at in critical_at for d in (-guard, guard)}
    )
    for left, right in pairwise(edges):
        point = left + (right - left) / 2
        free = all(abs(point - at) > guard for at in critical_at)
        stretch_start = max([start] + [at + guard for at in critical_at if at + guard <= point])
        stretch_end = min([end] + [at - guard for at in critical_at if at - guard >= point])
        expected = free and stretch_end - stretch_start >= case["min_length"]
        inside = [w for w in windows if w.start < point < w.end]
        assert bool(inside) == expected
        if inside:
            assert (inside[0].start, inside[0].end) == (stretch_start, stretch_end)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_critical_runs_and_counts_are_the_fire_times(case: dict) -> None:
    report = report_of(case)
    tz, guard = case["tz"], case["guard"]
    expected_critical = sorted(
        (at, name)
        for name in case["critical"]
        for at in fire_times(
            case["schedules"][name],
            case["start"] - guard - timedelta(microseconds=1),
            case["end"] + guard,
            tz=tz,
            anchor=case["anchors"].get(name),
        )
    )
    assert [(run.at, run.entry) for run in report.critical_runs] == expected_critical
    for window in report.windows:
        inside = sum(
            1
            for name, entry in case["schedules"].items()
            if name not in case["critical"]
            for at in fire_times(
                entry,
                window.start - timedelta(microseconds=1),
                window.end,
                tz=tz,
                anchor=case["anchors"].get(name),
            )
        )
        assert window.noncritical_runs == inside
