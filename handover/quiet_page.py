"""The quiet-window report as one self-contained HTML page (``handover quiet-windows --html``): the
period as a timeline, a row per local day, with each critical run and its guard, the quiet windows,
and the density of the other runs; hovering a mark names the entry and the time.

Nothing is fetched: the styles and the script are inline, and the script draws SVG from the data
embedded in the page (times as epoch milliseconds, labels already in the app's local time), so the
page opens from a file, a mail or an S3 bucket alike. A day with a clock change is drawn at the
width of any other, its hours squeezed or stretched.
"""

from __future__ import annotations

import html
import json
from bisect import bisect_left
from datetime import datetime, timedelta, tzinfo
from typing import Any

from beat_handover.scheduler.durations import format_duration
from beat_handover.scheduler.quiet import QuietReport, zone_name

BIN = timedelta(minutes=15)  # the other runs are counted per quarter of an hour
TICK = timedelta(minutes=15)  # local hour marks are looked for at this step (half-hour zones)
ENTRIES_NAMED = 4  # the busiest entries named in a density bar's label


def render_page(report: QuietReport, *, generated: datetime) -> str:
    """The page, as text."""
    model = page_model(report, generated=generated)
    data = json.dumps(model, separators=(",", ":")).replace("</", "<\\/")
    title = html.escape(model["title"])
    return PAGE.replace("{{title}}", title).replace("{{data}}", data)


def page_model(report: QuietReport, *, generated: datetime) -> dict[str, Any]:
    """What the page's script draws: days, windows, critical runs with their guards, density."""
    tz = report.tz
    guard = format_duration(report.guard.total_seconds())
    days = _days(report.start, report.end, tz)
    return {
        "title": f"Quiet windows in {zone_name(tz)}, {_local(report.start, tz)} to "
        f"{_local(report.end, tz)}",
        "summary": (
            f"Critical: {', '.join(report.critical) or '(none)'}; guard {guard} either side of "
            f"each critical run; windows of at least "
            f"{format_duration(report.min_length.total_seconds())}. "
            f"Generated {_local(generated, tz)}."
        ),
        "start": _ms(report.start),
        "end": _ms(report.end),
        "guard_ms": report.guard / timedelta(milliseconds=1),
        "days": days,
        "windows": [
            {
                "start": _ms(window.start),
                "end": _ms(window.end),
                "label": f"quiet {_local(window.start, tz)} to {_local(window.end, tz)} "
                f"({format_duration(window.length.total_seconds())})",
                "runs": window.noncritical_runs,
                "by_entry": [list(item) for item in window.runs_by_entry],
            }
            for window in report.windows
        ],
        "critical": [
            {
                "entry": run.entry,
                "at": _ms(run.at),
                "label": f"{run.entry} at {_local(run.at, tz)} (critical; guard {guard} "
                "either side)",
            }
            for run in report.critical_runs
        ],
        "density": _density(report, days),
        "no_window": report.no_window_reason() or None,
        "not_counted": [item.entry for item in (*report.phase_unknown, *report.unsupported)],
    }


def _days(start: datetime, end: datetime, tz: tzinfo) -> list[dict[str, Any]]:
    """Each local day the period touches: its real start and end, and its local hour marks."""
    days = []
    day = start.astimezone(tz).date()
    while True:
        day_start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(start.tzinfo)
        after = day + timedelta(days=1)
        day_end = datetime(after.year, after.month, after.day, tzinfo=tz).astimezone(start.tzinfo)
        if day_start >= end:
            break
        hours = []
        at = day_start
        while at < day_end:
            local = at.astimezone(tz)
            if local.minute == 0:
                hours.append({"at": _ms(at), "hour": local.hour})
            at += TICK
        days.append(
            {
                "label": day_start.astimezone(tz).strftime("%a %d %b"),
                "start": _ms(day_start),
                "end": _ms(day_end),
                "hours": hours,
            }
        )
        day = after
    return days


def _density(report: QuietReport, days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The other runs per quarter of an hour of the period, with the busiest entries named."""
    tz = report.tz
    runs = {name: times for name, times in report.other_runs.items() if times}
    bins = []
    at = report.start
    while at < report.end:
        until = min(at + BIN, report.end)
        counts = sorted(
            (
                (bisect_left(times, until) - bisect_left(times, at), name)
                for name, times in runs.items()
            ),
            reverse=True,
        )
        total = sum(count for count, _ in counts)
        if total:
            named = ", ".join(f"{name} {count}" for count, name in counts[:ENTRIES_NAMED] if count)
            more = len([count for count, _ in counts[ENTRIES_NAMED:] if count])
            bins.append(
                {
                    "start": _ms(at),
                    "end": _ms(until),
                    "runs": total,
                    "label": f"{_local(at, tz)} to {until.astimezone(tz):%H:%M}: {total} other "
                    f"runs ({named}{f', {more} more entries' if more else ''})",
                }
            )
        at = until
    return bins


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _local(at: datetime, tz: tzinfo) -> str:
    local = at.astimezone(tz)
    clock = "%H:%M:%S" if local.second else "%H:%M"
    return local.strftime(f"%a %d %b {clock} %Z")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#summary, #no-window, #not-counted { margin: .3em 0; }
#no-window { color: #a01515; font-weight: bold; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: 1.4em; height: .8em; margin-right: .3em;
  vertical-align: middle; }
svg { display: block; margin: 1em 0; max-width: 100%; height: auto; }
svg text { font-size: 11px; fill: #444; }
.day-bg { fill: #eee; }
.hour { stroke: #fff; stroke-opacity: .6; stroke-width: 1; }
.window { fill: #3fa34d; fill-opacity: .45; }
.guard { fill: #d9534f; fill-opacity: .35; }
.critical { stroke: #a01515; stroke-width: 2; }
.density { fill: #2f4f7f; fill-opacity: .55; }
.legend i.window { background: #3fa34d; opacity: .45; }
.legend i.guard { background: #d9534f; opacity: .35; }
.legend i.critical { background: #a01515; width: .25em; }
.legend i.density { background: #2f4f7f; opacity: .55; }
.window:hover, .guard:hover, .density:hover { fill-opacity: .9; }
.critical:hover { stroke-width: 4; }
#window-list li { margin: .2em 0; }
.runs { color: #555; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p id="summary"></p>
<p class="legend">
<span><i class="window"></i>quiet window</span>
<span><i class="critical"></i>critical run</span>
<span><i class="guard"></i>its guard</span>
<span><i class="density"></i>other runs per 15 minutes</span>
</p>
<noscript>This page draws its timeline with its own inline script; allow scripts for this file,
or run handover quiet-windows without --html for the same windows as text.</noscript>
<p id="no-window" hidden></p>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" role="img"
  aria-label="quiet windows, a row per day"></svg>
<h2>Windows</h2>
<ol id="window-list"></ol>
<p id="not-counted" hidden></p>
<script type="application/json" id="report-data">{{data}}</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var LEFT = 90, WIDTH = 960, ROW = 32, BAR = 24, TOP = 22;
  var svg = document.getElementById("timeline");

  function el(name, attrs, parent, tip) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (tip) {
      var title = document.createElementNS(SVG, "title");
      title.textContent = tip;
      node.appendChild(title);
    }
    parent.appendChild(node);
    return node;
  }

  document.getElementById("title").textContent = data.title;
  document.title = data.title;
  document.getElementById("summary").textContent = data.summary;
  if (data.no_window) {
    var none = document.getElementById("no-window");
    none.textContent = "No quiet window in this period: " + data.no_window + ".";
    none.hidden = false;
  }
  if (data.not_counted.length) {
    var left = document.getElementById("not-counted");
    left.textContent = "Not counted (phase unknown or unsupported schedule): " +
      data.not_counted.join(", ");
    left.hidden = false;
  }

  var height = TOP + data.days.length * ROW + 4;
  svg.setAttribute("viewBox", "0 0 " + (LEFT + WIDTH + 24) + " " + height);
  svg.setAttribute("width", LEFT + WIDTH + 24);
  svg.setAttribute("height", height);
  [0, 3, 6, 9, 12, 15, 18, 21, 24].forEach(function (hour) {
    el("text", {x: LEFT + WIDTH * hour / 24, y: 14, "text-anchor": "middle"}, svg)
      .textContent = String(hour).padStart(2, "0") + ":00";
  });
  var densest = data.density.reduce(function (most, bin) {
    return Math.max(most, bin.runs);
  }, 1);

  // The items of each list are in time order: a row visits only its own, found by bisection
  // (a year of an every-minute entry is half a million marks).
  function from(items, key, value) {
    var low = 0, high = items.length;
    while (low < high) {
      var middle = (low + high) >> 1;
      if (items[middle][key] < value) { low = middle + 1; } else { high = middle; }
    }
    return low;
  }
  // Draw the items whose `key` is at least `value`, up to the first whose `begin` is `until`.
  function each(items, key, value, begin, until, draw) {
    for (var i = from(items, key, value); i < items.length && items[i][begin] < until; i++) {
      draw(items[i], i);
    }
  }

  data.days.forEach(function (day, row) {
    var y = TOP + row * ROW;
    var g = el("g", {"class": "day", "data-day": day.label}, svg);
    function x(ms) {
      var clipped = Math.min(Math.max(ms, day.start), day.end);
      return LEFT + WIDTH * (clipped - day.start) / (day.end - day.start);
    }
    function overlaps(start, end) { return start < day.end && end > day.start; }
    el("text", {x: 4, y: y + BAR * 0.75}, g).textContent = day.label;
    el("rect", {"class": "day-bg", x: x(Math.max(day.start, data.start)), y: y,
      width: x(Math.min(day.end, data.end)) - x(Math.max(day.start, data.start)),
      height: BAR}, g);
    // Windows and guards fill the row; the other runs' density stands in its lower half.
    each(data.windows, "end", day.start + 1, "start", day.end, function (window, index) {
      if (!overlaps(window.start, window.end)) { return; }
      el("rect", {"class": "window", "data-window": index, x: x(window.start), y: y,
        width: Math.max(x(window.end) - x(window.start), 1), height: BAR}, g,
        window.label + ", " + window.runs + " other runs");
    });
    each(data.density, "end", day.start + 1, "start", day.end, function (bin) {
      if (!overlaps(bin.start, bin.end)) { return; }
      var tall = (BAR / 2) * Math.sqrt(bin.runs / densest);
      el("rect", {"class": "density", x: x(bin.start), y: y + BAR - tall,
        width: Math.max(x(bin.end) - x(bin.start) - 0.5, 0.5), height: tall}, g, bin.label);
    });
    day.hours.forEach(function (hour) {
      el("line", {"class": "hour", x1: x(hour.at), x2: x(hour.at), y1: y, y2: y + BAR}, g,
        String(hour.hour).padStart(2, "0") + ":00 " + day.label);
    });
    var guard = data.guard_ms;
    each(data.critical, "at", day.start - guard, "at", day.end + guard, function (run) {
      var clear = run.at - guard, until = run.at + guard;
      if (overlaps(clear, until)) {
        el("rect", {"class": "guard", x: x(clear), y: y,
          width: Math.max(x(until) - x(clear), 1), height: BAR}, g, run.label);
      }
      if (run.at >= day.start && run.at < day.end) {
        el("line", {"class": "critical", "data-entry": run.entry, x1: x(run.at),
          x2: x(run.at), y1: y - 2, y2: y + BAR + 2}, g, run.label);
      }
    });
  });

  var list = document.getElementById("window-list");
  data.windows.forEach(function (window, index) {
    var item = document.createElement("li");
    item.className = "window-item";
    item.dataset.window = index;
    item.dataset.start = window.start;
    item.textContent = window.label + ": " + window.runs + " other runs";
    if (window.by_entry.length) {
      var runs = document.createElement("div");
      runs.className = "runs";
      runs.textContent = window.by_entry.map(function (pair) {
        return pair[0] + " " + pair[1];
      }).join(", ");
      item.appendChild(runs);
    }
    list.appendChild(item);
  });
  document.body.dataset.rendered = "yes";
}());
</script>
</body>
</html>
"""
