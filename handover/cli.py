"""The operator's command line: ``handover`` (and ``celery -A proj handover``).

Exit codes: 0 done or nothing to do; 2 usage or configuration error; 3 refused by preflight;
4 timed out and rolled back; 5 roll-back failed (a person must look).
"""

from __future__ import annotations

import sys

import click

from beat_lock.errors import BeatLockError, ConfigError, StoreMissing
from handover.connection import connection_options
from handover.quiet_commands import quiet_windows

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_ROLLED_BACK = 4
EXIT_ROLLBACK_FAILED = 5


@click.group(name="handover", context_settings={"help_option_names": ["-h", "--help"]})
@connection_options
def cli() -> None:
    """Move Celery beat between environments safely, and steer the percentage routers."""


cli.add_command(quiet_windows)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: library errors become one clear line and a documented exit code."""
    try:
        cli.main(args=argv, prog_name="handover", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except (ConfigError, StoreMissing) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except BeatLockError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    sys.exit(EXIT_OK)


celery_command = cli
