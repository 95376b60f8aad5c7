"""This host's wall clock compared with the lock store's, on answers the store gives anyway.

Fire times are wall-clock by nature: a beat computes its slots from ``datetime.now()``, so a
host whose clock is an hour ahead would send every run an hour early, and by claiming those
future slots suppress the real runs for an hour. Lease expiry never compares wall clocks (see
:mod:`beat_handover.beat_lock.lease`); fire times must, and the store's clock is the one clock
every participant talks to.

Each backend reports the store's time on requests it makes anyway, at no extra request:
DynamoDB's HTTP ``Date`` header (whole seconds), Redis ``TIME`` inside the same script or
pipeline. A reading bounds the store's time at the moment it answered, ``[earliest, latest]``
(a Date header of ``D`` means ``[D, D + 1)``), and this host's wall and monotonic clocks are
read before sending and after the answer. So at any later moment, on this host's monotonic
clock, the store's time is known within an interval whose width is the header's resolution plus
the round trip, and it stays known however this host's wall clock is stepped meanwhile:

    store now >= earliest + (monotonic now - monotonic when the answer came)
    store now <= latest + (monotonic now - monotonic when the request was sent)

The skew is this host's wall clock now minus the middle of that interval, and its uncertainty
half the interval's width; a skew is judged beyond a bound only if even its smallest possible
value is (|skew| - uncertainty > bound), so a coarse header never condemns a correct clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any


@dataclass(frozen=True)
class Sent:
    """This host's clocks just before a request was sent."""

    wall: float
    monotonic: float


@dataclass(frozen=True)
class _Reading:
    """The store's time at one answer, tied to this host's monotonic clock."""

    earliest: float  # the store's epoch seconds when it answered, at the earliest
    latest: float  # ... at the latest
    sent_monotonic: float
    answered_monotonic: float


@dataclass(frozen=True)
class ClockSkew:
    """This host's wall clock against the store's, now."""

    seconds: float  # this host minus the store: positive means this host is ahead
    uncertainty_seconds: float  # the true skew is within seconds +- this
    max_seconds: float  # the bound it is judged against (beat_lock_max_clock_skew_seconds)

    @property
    def exceeded(self) -> bool:
        """Beyond the bound even at its smallest possible value."""
        return abs(self.seconds) - self.uncertainty_seconds > self.max_seconds

    def describe(self) -> str:
        """``3600.2 s ahead of the store's clock (+- 0.6 s; at most 5 s allowed)``."""
        way = "ahead of" if self.seconds >= 0 else "behind"
        return (
            f"{abs(self.seconds):.1f} s {way} the store's clock (+- "
            f"{self.uncertainty_seconds:.1f} s; at most {self.max_seconds:g} s allowed)"
        )

    def detail(self) -> dict[str, Any]:
        """Fields of a heartbeat (``clock_skew_seconds`` etc.), for ``handover status``."""
        return {
            "clock_skew_seconds": round(self.seconds, 3),
            "clock_skew_uncertainty_seconds": round(self.uncertainty_seconds, 3),
            "clock_skew_max_seconds": self.max_seconds,
            "clock_skewed": self.exceeded,
        }


class StoreClock:
    """The latest reading of a store's clock; thread-safe (the lease keeper, the scheduler and
    a fence's writes all answer through one store). ``wall`` and ``monotonic`` are injectable
    for tests."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reading: _Reading | None = None

    def sent(self) -> Sent:
        """Call just before sending a request whose answer carries the store's time."""
        return Sent(self._wall(), self._monotonic())

    def observe(self, sent: Sent, earliest: float, latest: float) -> None:
        """The store answered the request sent at ``sent``; its time was then within
        [earliest, latest] (epoch seconds). The newest answer wins."""
        reading = _Reading(earliest, latest, sent.monotonic, self._monotonic())
        with self._lock:
            newest = self._reading
            if newest is None or reading.answered_monotonic >= newest.answered_monotonic:
                self._reading = reading

    def observe_http_date(self, sent: Sent, date: str | None) -> None:
        """An HTTP ``Date`` header (whole seconds, so the time was in [D, D + 1)); a missing or
        unreadable header is no reading."""
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self.observe(sent, moment, moment + 1.0)

    def observe_redis_time(self, sent: Sent, answer: Any) -> None:
        """A Redis ``TIME`` answer: [seconds, microseconds], as text or numbers."""
        seconds, micros = (int(part) for part in answer)
        moment = seconds + micros / 1e6
        self.observe(sent, moment, moment)

    def store_time(self) -> tuple[float, float] | None:
        """The store's time now, (earliest, latest) in epoch seconds; None before any answer."""
        reading = self._reading
        if reading is None:
            return None
        now = self._monotonic()
        return (
            reading.earliest + (now - reading.answered_monotonic),
            reading.latest + (now - reading.sent_monotonic),
        )

    def store_now(self) -> float:
        """For times every host reads (heartbeat expiry, when it was seen), in epoch seconds:
        this host's wall clock if it agrees with the store's within the reading's uncertainty
        (or nothing was read yet), else the middle of the store's time now."""
        wall, bounds = self._wall(), self.store_time()
        if bounds is None or bounds[0] <= wall <= bounds[1]:
            return wall
        return (bounds[0] + bounds[1]) / 2

    def skew(self, max_seconds: float) -> ClockSkew | None:
        """This host's wall clock now against the store's, judged against ``max_seconds``;
        None before any answer."""
        bounds = self.store_time()
        if bounds is None:
            return None
        earliest, latest = bounds
        middle, half_width = (earliest + latest) / 2, (latest - earliest) / 2
        return ClockSkew(self._wall() - middle, half_width, max_seconds)
