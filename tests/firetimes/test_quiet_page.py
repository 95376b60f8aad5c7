"""``handover quiet-windows --html``: the page is self-contained, and headless Chromium renders
from it the windows, critical runs and guards the report holds (the page's script draws them;
``--dump-dom`` shows the document after it ran)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.handover.cli import cli
from tests.firetimes.test_quiet_cli import APP, CLEAN_ENV

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed, so the page is not rendered in a browser (Debian: "
    "apt-get install chromium; .ci/run installs it)",
)


def page(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "quiet.html"
    result = CliRunner().invoke(
        cli, ["-A", APP, "quiet-windows", *args, "--html", str(path)], env=CLEAN_ENV
    )
    assert result.exit_code == 0, result.output
    assert f"quiet windows to {path}" in result.stderr
    return path


class Elements(HTMLParser):
    """Every element of a document: its tag, attributes and text (its children's included, so
    an SVG mark's text is its hover title)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self.open: list[int] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), []))
        if tag not in ("meta", "br", "img", "input"):
            self.open.append(len(self.elements) - 1)

    def handle_endtag(self, tag):
        while self.open:
            if self.elements[self.open.pop()][0] == tag:
                break

    def handle_data(self, data):
        for index in self.open:
            self.elements[index][2].append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        """Elements with this tag and attributes (``class_`` for class, ``data_x`` for
        data-x), each with its text."""
        wanted = {key.rstrip("_").replace("_", "-"): value for key, value in attrs.items()}
        return [
            (a, "".join(text))
            for t, a, text in self.elements
            if t == tag and all(a.get(key) == value for key, value in wanted.items())
        ]


def rendered(path: Path) -> Elements:
    """The document after the page's script ran in headless Chromium."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(path.parent)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return Elements(result.stdout)


def test_the_page_fetches_nothing(tmp_path):
    text = page(tmp_path, "--date", "2026-10-25").read_text()
    assert not re.search(r"\b(src|href)=|url\(|@import|<link", text)
    assert text.count("<script") == 2  # the data and the drawing, both inline


@needs_chromium
def test_chromium_draws_each_window_critical_run_and_guard_of_the_report(tmp_path):
    dom = rendered(page(tmp_path, "--from", "2026-10-24T00:00", "--days", "3"))

    assert dom.find("body", data_rendered="yes")
    days = [a["data-day"] for a, _ in dom.find("g", class_="day")]
    assert days == ["Sat 24 Oct", "Sun 25 Oct", "Mon 26 Oct"]
    items = [text for _, text in dom.find("li", class_="window-item")]
    assert [item.split(" other runs")[0] for item in items] == [
        "quiet Sat 24 Oct 00:00 BST to Sat 24 Oct 01:50 BST (1h50m): 610",
        "quiet Sat 24 Oct 02:10 BST to Sun 25 Oct 01:50 GMT (1d0h40m): 8101",
        "quiet Sun 25 Oct 02:10 GMT to Mon 26 Oct 01:50 GMT (23h40m): 7774",
        "quiet Mon 26 Oct 02:10 GMT to Mon 26 Oct 17:20 GMT (15h10m): 5013",
        "quiet Mon 26 Oct 17:40 GMT to Tue 27 Oct 00:00 GMT (6h20m): 2087",
    ]
    runs = [text for _, text in dom.find("div", class_="runs")]  # each window's, per entry
    assert runs[0].startswith("health-db 111, health-queue 111, health-redis 111, ")
    assert len(runs) == 5
    # A window across midnight is drawn on both days; every window is drawn.
    segments = [a["data-window"] for a, _ in dom.find("rect", class_="window")]
    assert sorted(segments) == ["0", "1", "1", "2", "2", "3", "4"]
    critical = [(a["data-entry"], text) for a, text in dom.find("line", class_="critical")]
    assert critical == [
        (
            "billing-nightly",
            "billing-nightly at Sat 24 Oct 02:00 BST (critical; guard 10m either side)",
        ),
        (
            "billing-nightly",
            "billing-nightly at Sun 25 Oct 02:00 GMT (critical; guard 10m either side)",
        ),
        (
            "billing-nightly",
            "billing-nightly at Mon 26 Oct 02:00 GMT (critical; guard 10m either side)",
        ),
        (
            "letters-weekday",
            "letters-weekday at Mon 26 Oct 17:30 GMT (critical; guard 10m either side)",
        ),
    ]
    assert len(dom.find("rect", class_="guard")) == 4
    density = [text for _, text in dom.find("rect", class_="density")]
    assert len(density) == 3 * 96 + 4  # a bar per quarter hour; Sunday has 25 hours
    assert density[0].startswith("Sat 24 Oct 00:00 BST to 00:15: ")
    assert "hidden" in dom.find("p", id="no-window")[0][0]


@needs_chromium
def test_chromium_shows_which_critical_entry_leaves_no_window(tmp_path):
    dom = rendered(page(tmp_path, "--date", "2026-10-26", "--critical", "health-db"))

    ((attrs, text),) = dom.find("p", id="no-window")
    assert "hidden" not in attrs
    assert text == (
        "No quiet window in this period: health-db runs at most 1m apart, and a window of 15m "
        "needs 35m between two critical runs (the 10m guard on both sides)."
    )
    assert dom.find("li", class_="window-item") == []
    assert dom.find("rect", class_="window") == []


def test_a_page_that_cannot_be_written_is_refused_in_one_line(tmp_path):
    where = tmp_path / "missing" / "quiet.html"
    result = CliRunner().invoke(
        cli, ["-A", APP, "quiet-windows", "--html", str(where)], env=CLEAN_ENV
    )
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == (
        f"--html {where}: cannot write the page (No such file or directory); give a file in a "
        "directory you can write to"
    )
