"""The operator's command line: ``handover`` (and ``celery -A proj handover``), a thin click
layer over the library, one module per command group:

- :mod:`~beat_handover.handover.cli.root`: the ``handover`` group and ``handover --to ENV``;
- :mod:`~beat_handover.handover.cli.lock_commands`: ``status``, ``history``, ``init``;
- :mod:`~beat_handover.handover.cli.doubt_commands`: ``ack-in-doubt``;
- :mod:`~beat_handover.handover.cli.quiet_command`: ``quiet-windows``;
- :mod:`~beat_handover.handover.cli.route_commands`: ``route ...``;

with the options they share in :mod:`~beat_handover.handover.cli.params` and the handover's
live output in :mod:`~beat_handover.handover.cli.console`.
"""

from __future__ import annotations

import sys

from beat_handover.beat_lock.errors import BeatLockError
from beat_handover.handover.cli.doubt_commands import ack_in_doubt
from beat_handover.handover.cli.lock_commands import history, init, status
from beat_handover.handover.cli.quiet_command import quiet_windows
from beat_handover.handover.cli.root import cli, report_error
from beat_handover.handover.cli.route_commands import route

__all__ = ["cli", "main"]

for command in (status, history, init, ack_in_doubt, quiet_windows, route):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click ends usage errors (exit 2), this the library's errors."""
    try:
        cli.main(args=argv, prog_name="handover")
    except BeatLockError as exc:
        sys.exit(report_error(exc))
