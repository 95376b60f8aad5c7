"""Holding signals while a step must not be cut short: the one helper for it.

``celery beat`` handles SIGTERM/SIGINT by closing the scheduler and raising SystemExit from
wherever the main thread is. Between a successful claim and the publish, that would lose the run:
the claim cannot be undone, so nobody would ever send it. While :meth:`HeldSignals.held` is
active the signals are recorded instead, and delivered to the original handler when it ends.
The demo holds SIGINT, SIGTERM and SIGHUP the same way while it starts a command, so that a
Ctrl-C never leaves an untracked child behind.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

HELD = (signal.SIGTERM, signal.SIGINT)


class HeldSignals:
    """Wraps the installed handlers of SIGTERM and SIGINT; inert outside the main thread."""

    def __init__(
        self,
        signums: tuple[signal.Signals, ...] = HELD,
        *,
        until: str = "the run being published is sent",
    ) -> None:
        self._signums = signums
        self._until = until
        self._originals: dict[int, Any] = {}
        self._depth = 0
        self._pending: tuple[int, FrameType | None] | None = None

    def install(self) -> None:
        """Wrap the handlers installed now (celery beat's, by the time the scheduler ticks)."""
        if self._originals or threading.current_thread() is not threading.main_thread():
            return
        for signum in self._signums:
            self._originals[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Put the original handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return
        originals, self._originals = self._originals, {}
        for signum, original in originals.items():
            signal.signal(signum, original)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Record SIGTERM/SIGINT until the block ends, then deliver the first one."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._pending is not None:
                signum, frame = self._pending
                self._pending = None
                self._deliver(signum, frame)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            logger.info("signal=%s held until %s", signal.Signals(signum).name, self._until)
            if self._pending is None:
                self._pending = (signum, frame)
            return
        self._deliver(signum, frame)

    def _deliver(self, signum: int, frame: FrameType | None) -> None:
        original = self._originals.get(signum, signal.SIG_DFL)
        if callable(original):
            handler: Callable[[int, FrameType | None], Any] = original
            handler(signum, frame)
            return
        self.uninstall()
        os.kill(os.getpid(), signum)
