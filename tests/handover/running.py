"""Run the ``handover`` console entry point in-process, as a user would run the script: through
:func:`beat_handover.handover.cli.main`, which ends library errors with a line and an exit code."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from beat_handover.handover.cli import main


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args: str) -> Ran:
    with CliRunner().isolation() as (out, err, _mixed):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        return Ran(
            code if isinstance(code, int) else 1, out.getvalue().decode(), err.getvalue().decode()
        )
