"""The percentage switch both handlers share: which side, old or new, gets this request.

What it guarantees:

- **Exact shares.** A decision compares an integer draw in ``range(RESOLUTION)`` (one million)
  with the route's integer threshold (percent x 10,000): 0 % sends nothing to the new side,
  100 % everything, 0.1 % one draw in a thousand. No floats take part.
- **Sticky keys.** With a key (a cookie, a header, an SES message id), the draw is a bucket
  hashed from route name and key (SHA-256), so one key always goes the same way at one
  percentage, and raising the percentage only moves keys from old to new (a key is on the new
  side when its bucket is below the threshold, and the threshold only grows). Without a key,
  each decision draws afresh.
- **One read per TTL.** The route item is read at most once per ``cache_ttl_seconds`` per
  switch (per Lambda container), failed reads included, so a store outage costs one timed-out
  read per TTL, never one per request.
- **Fail safe.** A failed, missing or malformed read keeps the last good route; if there has
  never been one, everything goes to the old side (the fallback side, if one is configured)
  and an ERROR is logged at every read until a good one arrives. Nothing here raises on a bad
  item.
- **Metrics.** Each read, and each ``flush()`` of a batch, writes one CloudWatch EMF log line
  with the decisions per side since the previous line.

A switch is not thread-safe; Lambda runs one request at a time per container.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from beat_handover.routers.emf import Emit, emf_line, print_line
from beat_handover.routers.errors import MalformedRoute
from beat_handover.routers.route_format import (
    DEFAULT_CACHE_TTL_SECONDS,
    RESOLUTION,
    Route,
    Side,
    format_percent,
    route_from_item,
)

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "BeatHandover/Routers"
OLD = "old"
NEW = "new"


def bucket(route: str, key: str) -> int:
    """The fixed draw of ``key`` on ``route``, in ``range(RESOLUTION)``.

    The first 8 bytes of a SHA-256 digest are uniform; reducing 2**64 modulo one million biases
    a bucket by under 1e-13, far below anything a percentage can express.
    """
    digest = hashlib.sha256(f"{route}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % RESOLUTION


@dataclass(frozen=True)
class Decision:
    """Where one request goes. ``target`` is None only when no route was ever read and no
    fallback side is configured: leave the request as it came (its origin is the old side)."""

    side: str  # "old" or "new"
    target: Side | None
    label: str
    forced: bool = False


class Switch:
    """Decides old or new for one route, from a cached copy of its item."""

    def __init__(
        self,
        name: str,
        kind: str,
        reader: Callable[[], Any],
        *,
        cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS,
        fallback: Side | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        emit: Emit = print_line,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.name = name
        self.kind = kind
        self.reader = reader  # returns the raw item or None; replaceable, e.g. to count reads
        self.cache_ttl_seconds = cache_ttl_seconds
        self.fallback = fallback
        self._clock = clock
        self._rng = rng or random.Random()
        self._emit = emit
        self._namespace = namespace
        self._route: Route | None = None
        self._stale = False  # the last read failed; self._route is older than one TTL
        self._read_due_at: float | None = None
        self._threshold = 0
        self._decisions: dict[str, Decision] = {}
        self._counts = {OLD: 0, NEW: 0}
        self._forced = 0

    def route(self) -> Route | None:
        """The last good route, read again first if the cached copy is older than the TTL."""
        now = self._clock()
        if self._read_due_at is None or now >= self._read_due_at:
            self._read_due_at = now + self.cache_ttl_seconds
            self._refresh()
        return self._route

    def decide(self, key: str | None = None) -> Decision:
        """Old or new for one request; sticky when ``key`` is given (empty counts as none)."""
        route = self.route()
        if route is None:
            return self._count(self._fallback_decision())
        draw = bucket(route.name, key) if key else self._rng.randrange(RESOLUTION)
        return self._count(self._decisions[NEW if draw < self._threshold else OLD])

    def force(self, name: str) -> Decision | None:
        """The side ``name`` (old, new or a label) names, or None if it names neither."""
        route = self.route()
        if route is None:
            return None
        side = route.side_called(name)
        if side is None:
            return None
        target = route.side(side)
        self._forced += 1
        return self._count(Decision(side, target, target.label, forced=True))

    def flush(self) -> None:
        """Write one metrics line for the decisions since the last line, if there were any."""
        if self._counts[OLD] or self._counts[NEW]:
            self._write_metrics("batch", outcome=None)

    def _fallback_decision(self) -> Decision:
        label = self.fallback.label if self.fallback is not None else OLD
        return Decision(OLD, self.fallback, label)

    def _count(self, decision: Decision) -> Decision:
        self._counts[decision.side] += 1
        return decision

    def _refresh(self) -> None:
        try:
            item = self.reader()
        # Any failure of the read, whatever the library raises, must leave the handler
        # serving from the last good route: that is the whole point of the cache.
        except Exception as exc:
            self._keep_last_good("unreadable", f"{type(exc).__name__}: {exc}")
            return
        if item is None:
            self._keep_last_good("missing", "the route item does not exist")
            return
        try:
            route = route_from_item(item)
            if route.name != self.name or route.kind != self.kind:
                raise MalformedRoute(
                    f"the item is {route.kind} route {route.name!r}, but this handler serves "
                    f"{self.kind} route {self.name!r}"
                )
        except MalformedRoute as exc:
            self._keep_last_good("malformed", str(exc))
            return
        previous, self._route, self._stale = self._route, route, False
        # Worked out once per read, not per request: this is the warm path.
        self._threshold = route.threshold
        self._decisions = {
            side: Decision(side, route.side(side), route.side(side).label) for side in (OLD, NEW)
        }
        if previous is None or previous.version != route.version:
            logger.info(
                "route=%s version=%s percent=%s old=%s new=%s route config loaded",
                route.name,
                route.version,
                format_percent(route.percent),
                route.old.label,
                route.new.label,
            )
        self._write_metrics("refresh", outcome="ok")

    def _keep_last_good(self, outcome: str, detail: str) -> None:
        self._stale = True
        if self._route is None:
            logger.error(
                "route=%s outcome=%s detail=%r NO ROUTE CONFIG HAS EVER BEEN READ: sending "
                "everything to the old side (%s) until a good read; next read in %ss",
                self.name,
                outcome,
                detail,
                self.fallback.describe() if self.fallback else "the request's own origin",
                self.cache_ttl_seconds,
            )
        else:
            logger.warning(
                "route=%s outcome=%s detail=%r keeping the last good config (version=%s "
                "percent=%s); next read in %ss",
                self.name,
                outcome,
                detail,
                self._route.version,
                format_percent(self._route.percent),
                self.cache_ttl_seconds,
            )
        self._write_metrics("refresh", outcome=outcome)

    def _write_metrics(self, event: str, *, outcome: str | None) -> None:
        route = self._route
        metrics = {
            "RoutedToOld": (self._counts[OLD], "Count"),
            "RoutedToNew": (self._counts[NEW], "Count"),
            "Overridden": (self._forced, "Count"),
        }
        if outcome is not None:
            metrics["StoreReadFailures"] = (0 if outcome == "ok" else 1, "Count")
        metrics["PercentToNew"] = (float(route.percent) if route else 0.0, "Percent")
        properties = {
            "event": event,
            "kind": self.kind,
            "version": route.version if route else None,
            "config": "none" if route is None else ("stale" if self._stale else "current"),
        }
        if outcome is not None:
            properties["outcome"] = outcome
        self._emit(emf_line(self._namespace, {"Route": self.name}, metrics, properties))
        self._counts = {OLD: 0, NEW: 0}
        self._forced = 0
