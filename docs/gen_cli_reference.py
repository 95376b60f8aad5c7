"""Regenerate the references under docs/reference/ from the code, so they cannot drift from it:

- the CLI reference (``docs/reference/cli.md``): the ``--help`` of ``handover`` and of every
  command and subcommand under it, as click renders it (at a fixed width of 80 columns, whatever
  the terminal);
- the configuration reference (``docs/reference/configuration.md``): every ``beat_lock_*`` key of
  ``beat_handover.scheduler.settings.SETTINGS`` with its environment variable, default and meaning,
  and every key of the router handlers' config (``beat_handover.routers.config``) with the handlers
  that take it, its default and meaning.

Each goes between a pair of marker comments in its file (``<!-- generated: NAME ... -->`` and
``<!-- end generated: NAME -->``); the text around them is written by hand and left alone.

    .venv/bin/python docs/gen_cli_reference.py           # rewrite the stale files
    .venv/bin/python docs/gen_cli_reference.py --check   # exit 1 if any file is stale

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

from beat_handover.handover.cli import cli
from beat_handover.routers.config import CLOUDFRONT_KEYS, COMMON_KEYS, SES_RECEIPTS_KEYS
from beat_handover.routers.fields import REQUIRED
from beat_handover.scheduler.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
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
        parts.append(f"## `{path}`\n\n```\n$ {path} --help\n{text}\n```")
    return "\n\n".join(parts)


def cell(text: str) -> str:
    """``text`` as one table cell: a ``|`` would end the cell, a ``<`` could open an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;")


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
        default, meaning = shown_default(setting.default), cell(setting.meaning)
        rows.append(f"| `{key}` | `{key.upper()}` | {default} | {meaning} |")
    return "\n".join(rows)


def router_config_reference() -> str:
    """The table of the router handlers' config keys: those both take, then each one's own."""
    rows = ["| key | handlers | default | meaning |", "|---|---|---|---|"]
    for keys, handlers in (
        (COMMON_KEYS, "both"),
        (CLOUDFRONT_KEYS, "cloudfront"),
        (SES_RECEIPTS_KEYS, "ses_receipts"),
    ):
        for key, field in keys.items():
            shown = "required" if field.default is REQUIRED else shown_default(field.default)
            rows.append(f"| `{key}` | {handlers} | {shown} | {cell(field.meaning)} |")
    return "\n".join(rows)


# name -> (the file it is written into, what writes it)
SECTIONS: dict[str, tuple[Path, Callable[[], str]]] = {
    "cli-reference": (REFERENCE / "cli.md", cli_reference),
    "config-reference": (REFERENCE / "configuration.md", config_reference),
    "router-config-reference": (REFERENCE / "configuration.md", router_config_reference),
}


def render(path: Path, text: str) -> str:
    """``text`` (the file at ``path``) with each of its generated sections replaced by its current
    content."""
    for name, (target, make) in SECTIONS.items():
        if target != path:
            continue
        begin = f"<!-- generated: {name} by {SCRIPT}; edit the code, then run it -->"
        end = f"<!-- end generated: {name} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found is None:
            raise SystemExit(
                f"{path.relative_to(ROOT)} has no generated section {name!r}: add the lines\n"
                f"{begin}\n{end}\nwhere it belongs, then run {SCRIPT}"
            )
        text = f"{text[: found.start()]}{begin}\n{make()}\n{end}{text[found.end() :]}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1, showing the difference, if a reference is not up to date",
    )
    args = parser.parse_args()
    stale = []
    for path in dict.fromkeys(target for target, _ in SECTIONS.values()):
        name = str(path.relative_to(ROOT))
        current = path.read_text()
        wanted = render(path, current)
        if wanted == current:
            print(f"{name}: current")
        elif args.check:
            stale.append(name)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    wanted.splitlines(keepends=True),
                    name,
                    f"{name} (regenerated)",
                )
            )
        else:
            path.write_text(wanted)
            print(f"{name}: updated")
    if stale:
        raise SystemExit(f"stale: {', '.join(stale)}; run .venv/bin/python {SCRIPT}")


if __name__ == "__main__":
    main()
