"""CloudFront Lambda@Edge origin-request handler: send each request to the old or new origin.

Attach to the distribution's *origin-request* event (it runs only on cache misses: responses
CloudFront serves from its cache never reach it). For each request it:

1. removes the override headers, always, so they never reach an origin;
2. honours an override (force old or new) only if it carries the shared secret (compared in
   constant time); otherwise asks the switch, sticky on the configured cookie or header;
3. points ``request['origin']['custom']`` at the chosen side (domainName and, where the side sets
   them, port, protocol, path, timeouts) and rewrites ``Host`` to match;
4. adds the chosen side's label as a header, for the origin's logs.

The distribution's own origin must be a custom origin and should be the old side: it is where
requests go if no route item has ever been readable.
"""

from __future__ import annotations

import functools
import hmac
import logging
import random
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

from beat_handover.routers.config import (
    CloudFrontConfig,
    open_switch,
    packaged_handler,
    parse_config,
)
from beat_handover.routers.emf import Emit, print_line
from beat_handover.routers.errors import UnprocessableEvent
from beat_handover.routers.route_format import OriginSide
from beat_handover.routers.switch import Decision, Switch

logger = logging.getLogger(__name__)

Headers = dict[str, list[dict[str, str]]]


class CloudFrontRouter:
    """The origin-request handler: ``router(event, context)`` returns the request to forward."""

    def __init__(self, config: CloudFrontConfig, switch: Switch) -> None:
        self.config = config
        self.switch = switch
        self._side_header_key = "-".join(
            part.capitalize() for part in config.side_header.split("-")
        )

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        request = _request_of(event)
        headers: Headers = request.setdefault("headers", {})
        override = _pop_header(headers, self.config.override_header)
        secret = _pop_header(headers, self.config.override_secret_header)
        decision = None
        if override is not None:
            decision = self._override(override, secret)
        if decision is None:
            decision = self.switch.decide(self._sticky_key(headers))
        if isinstance(decision.target, OriginSide):
            _point_at(request, decision.target)
        headers[self.config.side_header] = [{"key": self._side_header_key, "value": decision.label}]
        return request

    def _override(self, value: str, secret: str | None) -> Decision | None:
        expected = self.config.override_secret
        if expected is None or secret is None:
            logger.warning("route=%s override=%r ignored: no secret", self.config.route, value)
            return None
        if not hmac.compare_digest(secret.encode(), expected.encode()):
            logger.warning("route=%s override=%r ignored: wrong secret", self.config.route, value)
            return None
        decision = self.switch.force(value)
        if decision is None:
            logger.warning(
                "route=%s override=%r ignored: names no side of the route (or no route config "
                "was read yet)",
                self.config.route,
                value,
            )
        return decision

    def _sticky_key(self, headers: Headers) -> str | None:
        if self.config.sticky_cookie is not None:
            for entry in headers.get("cookie", []):
                for part in entry.get("value", "").split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == self.config.sticky_cookie and value:
                        return value
        if self.config.sticky_header is not None:
            for entry in headers.get(self.config.sticky_header, []):
                if entry.get("value"):
                    return entry["value"]
        return None


def _request_of(event: Any) -> dict[str, Any]:
    try:
        request = event["Records"][0]["cf"]["request"]
        custom = request["origin"]["custom"]
    except (KeyError, IndexError, TypeError):
        raise UnprocessableEvent(
            "expected a CloudFront origin-request event with a custom origin "
            "(Records[0].cf.request.origin.custom); attach this function to the origin-request "
            f"event of a distribution whose origin is a custom origin; got {str(event)[:300]}"
        ) from None
    if not isinstance(request, dict) or not isinstance(custom, dict):
        raise UnprocessableEvent(f"the event's request is not an object: {str(event)[:300]}")
    return request


def _pop_header(headers: Headers, name: str) -> str | None:
    entries = headers.pop(name, None)
    if not entries:
        return None
    return entries[0].get("value")


def _point_at(request: dict[str, Any], side: OriginSide) -> None:
    request["origin"]["custom"].update(_origin_fields(side))
    request["headers"]["host"] = [{"key": "Host", "value": side.domain_name}]


@functools.lru_cache(maxsize=8)
def _origin_fields(side: OriginSide) -> Mapping[str, Any]:
    """The custom-origin fields a side sets (those it leaves unset keep the distribution's)."""
    fields = {
        "domainName": side.domain_name,
        "protocol": side.protocol,
        "port": side.port,
        "path": side.path,
        "readTimeout": side.read_timeout_seconds,
        "keepaliveTimeout": side.keepalive_timeout_seconds,
    }
    return types.MappingProxyType(
        {key: value for key, value in fields.items() if value is not None}
    )


def make_handler(
    config: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    emit: Emit = print_line,
) -> CloudFrontRouter:
    """An origin-request handler from a config dict (keys:
    beat_handover.routers.config.CLOUDFRONT_KEYS)."""
    parsed = parse_config(CloudFrontConfig, config)
    return CloudFrontRouter(parsed, open_switch(parsed, clock=clock, rng=rng, emit=emit))


handler = packaged_handler(make_handler)
