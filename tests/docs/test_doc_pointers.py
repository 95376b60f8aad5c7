"""The documentation points at things that exist: every relative link in README.md and docs/
reaches a file (and, with an ``#anchor``, a heading in it), every path of this repository written
as code (``scheduler/settings.py``, ``tests/x.py::test_name``) exists, and every
``beat_handover.`` name resolves to a module or to a name defined in one. Code moved or renamed
fails here, naming the document that still points at the old place."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^ *```.*?^ *```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)
REPO_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)+\.(?:py|md|toml|json)(?:::(\w+))?$")
# A path under one of these folders is this repository's; redbeat/schedulers.py is another's.
FOLDERS = {path.name for path in ROOT.iterdir() if path.is_dir()}
DOTTED = re.compile(r"\bbeat_handover(?:\.\w+)+")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, without punctuation other than
    ``-`` and ``_``, spaces turned into ``-``."""
    text = LINK.sub(r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(document: Path) -> list[str]:
    broken = []
    for _text, target in LINK.findall(CODE_SPAN.sub("", prose(document.read_text()))):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def missing_paths(document: Path) -> list[str]:
    missing = []
    for span in CODE_SPAN.findall(prose(document.read_text())):
        found = REPO_PATH.match(span)
        if found is None or span.split("/")[0] not in FOLDERS:
            continue
        path = ROOT / span.partition("::")[0]
        function = found.group(1)
        if not path.is_file():
            missing.append(f"{span}: no such file")
        elif function and not re.search(rf"^\s*def {function}\(", path.read_text(), re.M):
            missing.append(f"{span}: no function {function} in it")
    return missing


def defined_names(body: list[ast.stmt]) -> set[str]:
    names = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names.update(ast.literal_eval(node.value))  # served by a module __getattr__
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def resolves(dotted: str) -> bool:
    """``dotted`` is a module, or a module and a name defined at its top level (read from its
    source, not imported), or a class there and a name defined in the class."""
    parts = dotted.split(".")
    module = None
    cut = 1
    while cut < len(parts) and (module is None or module.submodule_search_locations):
        spec = importlib.util.find_spec(".".join(parts[: cut + 1]))
        if spec is None:
            break
        module, cut = spec, cut + 1
    rest = parts[cut:]
    if module is None or len(rest) > 2:
        return False
    if not rest:
        return True
    body = ast.parse(Path(module.origin).read_text()).body
    if rest[0] not in defined_names(body):
        return False
    classes = [node for node in body if isinstance(node, ast.ClassDef) and node.name == rest[0]]
    return len(rest) == 1 or any(rest[1] in defined_names(c.body) for c in classes)


def unknown_names(document: Path) -> list[str]:
    return sorted({name for name in DOTTED.findall(document.read_text()) if not resolves(name)})


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_relative_link_reaches_a_file_and_heading(document):
    assert broken_links(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_repository_path_written_as_code_exists(document):
    assert missing_paths(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_beat_handover_name_resolves(document):
    assert unknown_names(document) == []


def test_each_check_finds_what_it_is_for(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Try it: `make demo` and more\n")
    document = tmp_path / "doc.md"
    document.write_text(
        "# Doc\n\n"
        "[fine](other.md#try-it-make-demo-and-more) [fine](#doc) [web](https://example.com)\n"
        "[gone](missing.md) [no heading](other.md#nowhere)\n\n"
        "`scheduler/settings.py` `scheduler/gone.py` `redbeat/schedulers.py`\n"
        "`tests/docs/test_doc_pointers.py::test_each_check_finds_what_it_is_for`\n"
        "`tests/docs/test_doc_pointers.py::test_that_never_was`\n\n"
        "`beat_handover.scheduler.LeasedScheduler`, `beat_handover.scheduler.firetimes.fire_times`,"
        " `beat_handover.scheduler.gone`, `beat_handover.scheduler.firetimes.gone`.\n\n"
        "```\n[in code](ignored.md) `scheduler/ignored.py`\n```\n"
    )
    assert broken_links(document) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere in other.md",
    ]
    assert missing_paths(document) == [
        "scheduler/gone.py: no such file",
        "tests/docs/test_doc_pointers.py::test_that_never_was: no function test_that_never_was "
        "in it",
    ]
    assert unknown_names(document) == [
        "beat_handover.scheduler.firetimes.gone",
        "beat_handover.scheduler.gone",
    ]
