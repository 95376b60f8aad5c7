"""Whether the old side of an SES-receipts route has drained: the depth and in-flight count of
each side's SQS queue, and whether the old side's queue is empty now that the route has sent
everything to the new side for longer than the handlers' cache TTL. The library behind
``handover route drain``.

SQS's counts are approximate (``ApproximateNumberOfMessages`` and its kin lag the queue by up to
a minute or so), so the old side counts as drained only when its queue reads empty *and* the
route has been at 100 % for longer than the cache TTL; a cautious operator waits a minute more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from beat_handover.beat_lock.errors import ConfigError, StoreUnavailable
from beat_handover.handover.instants import short_time
from beat_handover.handover.routes import Routes, route_status
from beat_handover.routers.route_format import QueueSide, Route, format_percent

COUNTS = {
    "waiting": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass(frozen=True)
class QueueDepth:
    """One side's queue as SQS counts it."""

    label: str
    queue_url: str
    waiting: int
    in_flight: int
    delayed: int

    @property
    def empty(self) -> bool:
        return self.waiting == self.in_flight == self.delayed == 0

    def describe(self) -> str:
        return f"{self.waiting} waiting, {self.in_flight} in flight, {self.delayed} delayed"


@dataclass(frozen=True)
class Drain:
    """Whether route ``route``'s old side has drained, and why (not)."""

    route: Route
    old: QueueDepth
    new: QueueDepth
    full_since: datetime | None  # when the route reached 100 %, if it is there and it is known
    drained: bool
    verdict: str

    def lines(self, now: datetime) -> list[str]:
        route = self.route
        since = "" if self.full_since is None else f" since {short_time(self.full_since, now)}"
        return [
            f"route {route.name} (ses_receipts): {format_percent(route.percent)}% to "
            f"{route.new.label}{since}",
            *(
                f"  {which:<4} {depth.label:<8} queue {depth.queue_url.rsplit('/', 1)[-1]}: "
                f"{depth.describe()}"
                for which, depth in (("old", self.old), ("new", self.new))
            ),
            ("drained: " if self.drained else "not drained: ") + self.verdict,
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "route": self.route.name,
            "percent": format_percent(self.route.percent),
            "full_since": None if self.full_since is None else self.full_since.isoformat(),
            "drained": self.drained,
            "verdict": self.verdict,
            **{
                which: {
                    "label": depth.label,
                    "queue_url": depth.queue_url,
                    "waiting": depth.waiting,
                    "in_flight": depth.in_flight,
                    "delayed": depth.delayed,
                }
                for which, depth in (("old", self.old), ("new", self.new))
            },
        }


class Queues:
    """SQS queue counts through boto3 (``AWS_ENDPOINT_URL`` honoured, as everywhere)."""

    def __init__(self, region: str, client: Any = None) -> None:
        self.client = client or boto3.session.Session().client("sqs", region_name=region)

    def depth(self, side: QueueSide) -> QueueDepth:
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=side.queue_url, AttributeNames=list(COUNTS.values())
            )["Attributes"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if "NonExistentQueue" in str(error.get("Code")):
                raise ConfigError(
                    f"the {side.label} queue {side.queue_url} does not exist; fix the route's "
                    "queue or create the queue"
                ) from None
            raise StoreUnavailable(
                f"SQS could not count {side.queue_url}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"SQS did not answer for {side.queue_url}: {exc}") from None
        counts = {key: int(attributes.get(name, 0)) for key, name in COUNTS.items()}
        return QueueDepth(side.label, side.queue_url, **counts)


def drain_state(routes: Routes, name: str, queues: Queues, *, now: datetime | None = None) -> Drain:
    """Route ``name``'s queues now, and whether its old side has drained."""
    now = now or datetime.now(UTC)
    route = routes.get(name)
    if route.kind != "ses_receipts" or not isinstance(route.old, QueueSide):
        raise ConfigError(
            f"route drain is for ses_receipts routes, whose sides are SQS queues; {name!r} is "
            f"a {route.kind} route"
        )
    assert isinstance(route.new, QueueSide)
    old, new = queues.depth(route.old), queues.depth(route.new)
    full_since = None
    if route.percent == 100:
        since = route_status(routes, route).since
        full_since = None if since is None else datetime.fromisoformat(since)
    drained, verdict = _verdict(route, old, full_since, now)
    return Drain(route, old, new, full_since, drained, verdict)


def _verdict(
    route: Route, old: QueueDepth, full_since: datetime | None, now: datetime
) -> tuple[bool, str]:
    if route.percent != 100:
        return False, (
            f"the route sends {format_percent(100 - route.percent)}% of receipts to "
            f"{old.label} still; it drains only once at 100%"
        )
    ttl = timedelta(seconds=route.cache_ttl_seconds)
    settled = None if full_since is None else full_since + ttl
    if full_since is not None and settled is not None and now < settled:
        return False, (
            f"the route reached 100% at {short_time(full_since, now)}; handlers that cached the "
            f"route before may send to {old.label} until {short_time(settled, now)} (the cache "
            "TTL)"
        )
    if not old.empty:
        return False, f"{old.label}'s queue still holds {old.describe()}"
    return True, (
        f"{old.label}'s queue is empty and gets no new receipts; its workers may be switched off"
    )


class WaitProgress(Protocol):
    def progress(self, label: str, elapsed_seconds: float) -> None: ...

    def end_wait(self) -> None: ...


def wait_for_drain(
    routes: Routes,
    name: str,
    queues: Queues,
    *,
    timeout_seconds: float,
    every_seconds: float,
    progress: WaitProgress,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Drain:
    """Count the queues every ``every_seconds`` until the old side has drained or
    ``timeout_seconds`` have passed; the last count."""
    started = clock()
    state = drain_state(routes, name, queues)
    while not state.drained:
        elapsed = clock() - started
        if elapsed >= timeout_seconds:
            break
        progress.progress(
            f"waiting for {state.old.label} to drain ({state.old.describe()})", elapsed
        )
        sleep(min(every_seconds, max(0.01, timeout_seconds - elapsed)))
        state = drain_state(routes, name, queues)
    progress.end_wait()
    return state
