"""``handover/`` in layers: the library (the handover procedure and what it reads and shows) has
no click in it; the click commands sit on the library; the demo and the shared test harness are
sub-packages of their own that the product never imports; and the arrows between the four
packages point one way (handover -> scheduler -> beat_lock; routers alone)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDOVER = ROOT / "handover"
PACKAGE = "beat_handover.handover"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code, as absolute names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def layer(path: Path) -> str:
    relative = path.relative_to(HANDOVER)
    if len(relative.parts) == 1:
        return "entry" if relative.name == "celery_command.py" else "library"
    return {"procedure": "library"}.get(relative.parts[0], relative.parts[0])


MODULES = sorted(HANDOVER.rglob("*.py"))
FORBIDDEN = {
    "library": ("click", f"{PACKAGE}.cli", f"{PACKAGE}.demo", f"{PACKAGE}.testing"),
    "cli": (f"{PACKAGE}.demo", f"{PACKAGE}.testing"),
    "testing": (f"{PACKAGE}.cli", f"{PACKAGE}.demo", f"{PACKAGE}.procedure"),
    "entry": ("beat_handover.beat_lock", "beat_handover.scheduler", "beat_handover.routers"),
}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_each_layer_imports_only_what_is_below_it(path: Path):
    banned = FORBIDDEN.get(layer(path), ())
    wrong = sorted(
        name
        for name in imports(path)
        for prefix in banned
        if name.split(".")[: len(prefix.split("."))] == prefix.split(".")
    )
    assert not wrong, f"{path.relative_to(ROOT)} ({layer(path)}) imports {wrong}"


def test_the_layers_are_all_there():
    assert {layer(path) for path in MODULES} == {"entry", "library", "cli", "demo", "testing"}


@pytest.mark.parametrize("folder", ["beat_lock", "scheduler", "routers"])
def test_the_lower_packages_never_import_the_handover(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        assert not any(name.startswith(PACKAGE) for name in imports(path)), path
