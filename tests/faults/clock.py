"""A shifted wall clock for one process and its children, as an NTP step shifts it.

:class:`ShiftedClock` builds ``clockshift.c`` with the machine's C compiler into a shared library
(once per test session directory) and gives the environment that preloads it. The offset lives in
a file the library maps, so :meth:`ShiftedClock.set` steps the wall clock of a running process::

    clock = ShiftedClock.build(tmp_path)
    clock.set(3600)                      # an hour ahead
    beat = processes.beat("paas", **clock.env())
    clock.set(0)                         # corrected, as ntpd would step it

Only ``CLOCK_REALTIME``, ``gettimeofday`` and ``time`` move; monotonic time and every sleep do not.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("clockshift.c")


def compiler_missing() -> str | None:
    """Why the shim cannot be built here, or None."""
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        return "no C compiler (gcc or cc) to build the clock shim; on Debian: apt-get install gcc"
    return None


class ShiftedClock:
    """The shim library and its offset file."""

    def __init__(self, library: Path, offset_file: Path) -> None:
        self.library = library
        self.offset_file = offset_file

    @classmethod
    def build(cls, directory: Path) -> ShiftedClock:
        directory.mkdir(parents=True, exist_ok=True)
        library = directory / "libclockshift.so"
        if not library.exists():
            compiler = shutil.which("gcc") or shutil.which("cc")
            subprocess.run(
                [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(SOURCE), "-ldl"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
        handle, offset_file = tempfile.mkstemp(dir=directory, prefix="clock-offset-")
        os.close(handle)
        clock = cls(library, Path(offset_file))
        clock.set(0)
        return clock

    def set(self, seconds: float) -> None:
        """Step the shifted processes' wall clock to ``seconds`` from the real one (written in
        place: the processes' mapping of the file sees the new value at once)."""
        with self.offset_file.open("r+b") as out:
            out.write(struct.pack("=q", round(seconds * 1e9)))

    def env(self) -> dict[str, str]:
        """Environment variables that shift a child process's clock."""
        return {"LD_PRELOAD": str(self.library), "CLOCKSHIFT_FILE": str(self.offset_file)}
