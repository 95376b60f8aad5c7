"""``celery -A proj handover ...``: the command Celery's command line loads at every start.

Celery imports each ``celery.commands`` entry point whenever any ``celery`` command starts,
``celery worker`` and ``celery beat`` included. This module is all of ours that it imports: it
names the command and its one-line help, and loads the real group
(:mod:`beat_handover.handover.cli`, with the library behind it) only when ``celery handover`` is
actually run or its help is asked for.
"""

from __future__ import annotations

from typing import Any

import click

SHORT_HELP = "Move Celery beat between environments safely, and steer the percentage routers."


class _LazyHandover(click.Command):
    """Stands in for the ``handover`` group in Celery's list of commands."""

    def __init__(self) -> None:
        super().__init__(
            name="handover",
            short_help=SHORT_HELP,
            help=SHORT_HELP,
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        from beat_handover.handover.cli import cli

        return cli.make_context(info_name, args, parent=parent, **extra)


handover = _LazyHandover()
