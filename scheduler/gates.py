"""When an entry may fire besides its schedule: the gates a schedule source puts on its entries.

Stock ``celery.beat`` entries have none. django-celery-beat's have four (``enabled``,
``start_time``, ``expires``, ``one_off``), checked by its ``ModelEntry.is_due`` before the
schedule; the leased scheduler applies the same gates to the slots it names, so a gated slot is
never claimed, and a run it sends is one the source's own scheduler would have sent
(:meth:`beat_handover.scheduler.leased.LeasedScheduler.entry_gates` is the seam).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Gates:
    """An entry's gates. A slot is admitted when the entry is open, the slot is at or after
    ``start`` and before ``expires``."""

    open: bool = True  # False: disabled, or a one-off that has run
    start: datetime | None = None  # aware; no slot before it
    expires: datetime | None = None  # aware; no slot at or after it
    once: bool = False  # one-off: of the slots due together, only the newest is sent

    def admit(self, slot: datetime) -> bool:
        """Whether the slot may be claimed."""
        if not self.open:
            return False
        if self.start is not None and slot < self.start:
            return False
        return self.expires is None or slot < self.expires


OPEN = Gates()
