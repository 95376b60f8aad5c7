"""Regenerate the two references in README.md from the code, so they cannot drift from it:

- the CLI reference: the ``--help`` of ``handover`` and of every command and subcommand under it,
  as click renders it (at a fixed width of 80 columns, whatever the terminal);
- the configuration reference: every ``beat_lock_*`` key of
``beat_handover.scheduler.settings.SETTINGS`` with
  its environment variable, default and meaning.

Each goes between a pair of marker comments in README.md (``<!-- generated: NAME ... -->`` and
``<!-- end generated: NAME -->``); the text around them is left alone.

    .venv/bin/python docs/gen_cli_reference.py           # rewrite README.md
    .venv/bin/python docs/gen_cli_reference.py --check   # exit 1 if README.md is stale

``tests/docs/test_generated_reference.py`` runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: import the working tree's code

from beat_handover.handover.cli import cli  # noqa: E402
from beat_handover.scheduler.settings import SETTINGS  # noqa: E402

README = ROOT / "README.md"
WIDTH = 80
SCRIPT = "docs/gen_cli_reference.py"


def contexts(
    command: click.Command, name: str, parent: click.Context | None = None
) -> Iterator[click.Context]:
    """A context for ``command`` and, depth first in listing order, for each subcommand."""
    # click fills the terminal's width less two columns, up to max_content_width
    settings = {**command.context_settings, "terminal_width": WIDTH - 2, "max_content_width": WIDTH}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx
    if isinstance(command, click.Group):
        for child in command.list_commands(ctx):
            yield from contexts(command.get_command(ctx, child), child, ctx)


def cli_reference() -> str:
    """Every command's ``--help``, under a heading naming the command."""
    parts = [
        "Every command also runs as `celery -A proj handover ...`, with the app's own "
        "configuration. Generated from `--help` by `" + SCRIPT + "`."
    ]
    for ctx in contexts(cli, "handover"):
        path = ctx.command_path
        text = "\n".join(line.rstrip() for line in ctx.command.get_help(ctx).splitlines())
        parts.append(f"#### `{path}`\n\n```\n$ {path} --help\n{text}\n```")
    return "\n\n".join(parts)


def shown_default(default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, tuple | list | dict) and not default:
        return "none"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def config_reference() -> str:
    """The table of ``beat_lock_*`` keys, in the order ``SETTINGS`` lists them."""
    rows = [
        "| key (`app.conf`) | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, setting in SETTINGS.items():
        cell = setting.meaning.replace("|", "\\|")
        rows.append(f"| `{key}` | `{key.upper()}` | {shown_default(setting.default)} | {cell} |")
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "cli-reference": cli_reference,
    "config-reference": config_reference,
}


def render(text: str) -> str:
    """``text`` (the README) with every generated section replaced by its current content."""
    for name, make in SECTIONS.items():
        begin = f"<!-- generated: {name} by {SCRIPT}; edit the code, then run it -->"
        end = f"<!-- end generated: {name} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found is None:
            raise SystemExit(
                f"README.md has no generated section {name!r}: add the lines\n"
                f"{begin}\n{end}\nwhere it belongs, then run {SCRIPT}"
            )
        text = f"{text[: found.start()]}{begin}\n{make()}\n{end}{text[found.end() :]}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1, showing the difference, if README.md is not up to date",
    )
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if not args.check:
        if wanted != current:
            README.write_text(wanted)
        print(f"README.md: generated sections {'updated' if wanted != current else 'current'}")
        return
    if wanted != current:
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                "README.md",
                "README.md (regenerated)",
            )
        )
        raise SystemExit(f"README.md is stale: run .venv/bin/python {SCRIPT}")
    print("README.md: generated sections are current")


if __name__ == "__main__":
    main()
