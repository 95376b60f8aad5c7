"""The durations that govern a lease, validated together in one place.

Relations (checked at construction, so a bad combination fails at start-up, not at 3am):

    lease_seconds > safe_seconds > renew_seconds > 0
    poll_seconds > 0 and poll_seconds < lease_seconds
    fallback_seconds >= lease_seconds
    max_clock_skew_seconds >= MIN_CLOCK_SKEW_SECONDS

``lease_seconds`` is how long a standby must see the lease's record version unchanged, on its own
monotonic clock, before it may take over. ``safe_seconds`` is how long after the start of its last
successful renewal the holder still trusts its lease; the margin ``lease - safe`` absorbs clock-rate
differences and the time a request spends in flight. ``renew_seconds`` is how often the holder
renews, so ``safe - renew`` is how long a renewal may fail or stall before the holder stops acting.
``fallback_seconds`` is how long a standby of another environment must see a lease pinned
elsewhere unchanged (nobody of the pinned environment holding and renewing it) before it takes
the lease and moves the pin to its own environment, so that a pin never leaves beat without a
leader for longer than that. ``max_clock_skew_seconds`` is how far this host's wall clock may be
from the lock store's (:mod:`beat_handover.beat_lock.store_clock`) before it neither leads nor
claims: fire times are wall-clock by nature, lease expiry is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from beat_handover.beat_lock.errors import ConfigError

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_RENEW_SECONDS = 5.0
DEFAULT_SAFE_SECONDS = 20.0
DEFAULT_POLL_SECONDS = 1.0
DEFAULT_FALLBACK_SECONDS = 120.0
# NTP-synced hosts stay within milliseconds of each other (AWS's time sync within a
# millisecond); a DynamoDB Date header has one-second resolution, so a reading is uncertain by
# half a second plus half the round trip. 5 s is far from both, and is how early a run can go.
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 5.0
# Below this a one-second Date header (plus a round trip) cannot tell a skew from its own
# resolution.
MIN_CLOCK_SKEW_SECONDS = 2.0


@dataclass(frozen=True)
class LeaseTimings:
    """Durations of a lease, in seconds. Defaults are production-sized."""

    lease_seconds: float = DEFAULT_LEASE_SECONDS
    renew_seconds: float = DEFAULT_RENEW_SECONDS
    safe_seconds: float = DEFAULT_SAFE_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    fallback_seconds: float = DEFAULT_FALLBACK_SECONDS
    max_clock_skew_seconds: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    def __post_init__(self) -> None:
        for field in (
            "lease_seconds",
            "renew_seconds",
            "safe_seconds",
            "poll_seconds",
            "fallback_seconds",
            "max_clock_skew_seconds",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{field} must be a number of seconds, got {value!r} ({type(value).__name__})"
                )
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{field} must be a finite number greater than 0, got {value!r}")
        if not self.lease_seconds > self.safe_seconds:
            raise ConfigError(
                f"lease_seconds ({self.lease_seconds}) must be greater than safe_seconds "
                f"({self.safe_seconds}): the holder must stop acting before a standby may take over"
            )
        if not self.safe_seconds > self.renew_seconds:
            raise ConfigError(
                f"safe_seconds ({self.safe_seconds}) must be greater than renew_seconds "
                f"({self.renew_seconds}): otherwise the lease lapses between two renewals"
            )
        if not self.poll_seconds < self.lease_seconds:
            raise ConfigError(
                f"poll_seconds ({self.poll_seconds}) must be less than lease_seconds "
                f"({self.lease_seconds}): a standby must look at the lease more than once per lease"
            )
        if not self.fallback_seconds >= self.lease_seconds:
            raise ConfigError(
                f"fallback_seconds ({self.fallback_seconds}) must be at least lease_seconds "
                f"({self.lease_seconds}): the pinned environment's own standbys must get the "
                "first chance to take over a dead holder"
            )
        if not self.max_clock_skew_seconds >= MIN_CLOCK_SKEW_SECONDS:
            raise ConfigError(
                f"max_clock_skew_seconds ({self.max_clock_skew_seconds}) must be at least "
                f"{MIN_CLOCK_SKEW_SECONDS:g}: the store's clock is read to the second (DynamoDB's "
                "Date header), so a smaller skew cannot be told apart from the reading's own error"
            )

    @property
    def request_timeout_seconds(self) -> float:
        """Budget for one store request, retries included: well inside ``safe - renew``."""
        return max(0.2, min(5.0, (self.safe_seconds - self.renew_seconds) / 3))
