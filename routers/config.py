"""Handler configuration: a plain dict, validated in one place into a frozen dataclass.

Lambda@Edge has no environment variables, so a packaged handler reads its dict from ``config.json``
next to this module (``beat_handover/routers/config.json`` inside the zip; ``handover route
package`` writes it). Every error names the key and the value seen. Unknown keys are errors: a
misspelt ``sticky_cooky`` must not silently turn stickiness off.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from beat_handover.routers.aws_client import AwsClient
from beat_handover.routers.emf import Emit, print_line
from beat_handover.routers.errors import RouterConfigError
from beat_handover.routers.fields import REQUIRED, Field, parse_fields
from beat_handover.routers.route_format import (
    DEFAULT_CACHE_TTL_SECONDS,
    MAX_CACHE_TTL_SECONDS,
    Side,
    parse_name,
    parse_side,
    route_key,
)
from beat_handover.routers.switch import DEFAULT_NAMESPACE, Switch

CONFIG_FILE_NAME = "config.json"
TABLE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
HEADER_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
COOKIE_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Headers a Lambda@Edge origin-request function may not add or remove.
EDGE_RESERVED_HEADERS = frozenset(
    {
        "host",
        "cookie",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "via",
        "content-length",
        "transfer-encoding",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
EDGE_RESERVED_PREFIXES = ("x-amz-cf-", "x-edge-", "x-amzn-", "x-accel-")
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class SwitchConfig:
    """Keys both handlers take: which route item to follow and how."""

    kind: ClassVar[str]

    route: str
    table: str
    region: str
    cache_ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS
    store_timeout_seconds: float = 1.0
    endpoint_url: str | None = None
    metrics_namespace: str = DEFAULT_NAMESPACE
    fallback_side: Side | None = None


@dataclass(frozen=True)
class CloudFrontConfig(SwitchConfig):
    kind: ClassVar[str] = "cloudfront"
    sticky_cookie: str | None = None
    sticky_header: str | None = None
    override_header: str = "x-route-override"
    override_secret_header: str = "x-route-secret"
    override_secret: str | None = None
    side_header: str = "x-route-side"


@dataclass(frozen=True)
class SesReceiptsConfig(SwitchConfig):
    kind: ClassVar[str] = "ses_receipts"
    task_name: str = "process-ses-result"


Parser = Callable[[Any], Any]


def _text(pattern: re.Pattern[str], expected: str, *, lower: bool = False) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(expected)
        return value.lower() if lower else value

    return parse


def _seconds(high: float) -> Parser:
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"a number of seconds greater than 0 and at most {high:g}")
        if not math.isfinite(value) or not 0 < value <= high:
            raise ValueError(f"a number of seconds greater than 0 and at most {high:g}")
        return float(value)

    return parse


def _edge_header(value: Any) -> str:
    name = _text(HEADER_PATTERN, "a header name of letters, digits and '-'", lower=True)(value)
    if name in EDGE_RESERVED_HEADERS or name.startswith(EDGE_RESERVED_PREFIXES):
        raise ValueError(
            "a header name Lambda@Edge lets a function add and remove (not "
            f"{', '.join(sorted(EDGE_RESERVED_HEADERS))} nor "
            f"{'*, '.join(EDGE_RESERVED_PREFIXES)}*)"
        )
    return name


def _secret(value: Any) -> str:
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or not value.isprintable():
        raise ValueError(f"a printable secret of at least {MIN_SECRET_LENGTH} characters")
    return value


def _task_name(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise ValueError("a Celery task name such as process-ses-result")
    return value


def _route(value: Any) -> str:
    return parse_name(value, source="config key 'route'")


def _side_parser(kind: str) -> Parser:
    def parse(value: Any) -> Side:
        return parse_side(kind, value, where="config key 'fallback_side'", error=RouterConfigError)

    return parse


# The README's table of keys follows these (a test checks it).
COMMON_KEYS: dict[str, Field] = {
    "route": Field(_route, REQUIRED, "name of the route item to follow (pk route#NAME)"),
    "table": Field(
        _text(TABLE_PATTERN, "a DynamoDB table name"),
        REQUIRED,
        "DynamoDB table holding the route item",
    ),
    "region": Field(
        _text(REGION_PATTERN, "an AWS region name such as eu-west-2"),
        REQUIRED,
        "region of the table (a Lambda@Edge copy runs in many regions; the table is in one)",
    ),
    "cache_ttl_seconds": Field(
        _seconds(MAX_CACHE_TTL_SECONDS),
        DEFAULT_CACHE_TTL_SECONDS,
        "read the route item at most once per this many seconds per container",
    ),
    "store_timeout_seconds": Field(
        _seconds(30),
        1.0,
        "connect and read timeout of one DynamoDB attempt (2 attempts)",
    ),
    "endpoint_url": Field(
        _text(re.compile(r"^https?://\S+$"), "an http(s) URL"),
        None,
        "AWS endpoint (DynamoDB; SQS too for ses_receipts) for local stacks and tests",
    ),
    "metrics_namespace": Field(
        _text(re.compile(r"^[A-Za-z0-9/_.#:-]{1,255}$"), "a CloudWatch namespace"),
        DEFAULT_NAMESPACE,
        "CloudWatch namespace of the EMF metrics",
    ),
}
CLOUDFRONT_KEYS: dict[str, Field] = {
    "fallback_side": Field(
        _side_parser("cloudfront"),
        None,
        "origin used when no route item was ever read (an `old` side "
        "map); unset: leave the distribution's own origin",
    ),
    "sticky_cookie": Field(
        _text(COOKIE_PATTERN, "a cookie name"),
        None,
        "cookie whose value keeps a visitor on one side",
    ),
    "sticky_header": Field(
        _text(HEADER_PATTERN, "a header name", lower=True),
        None,
        "header whose value keeps a client on one side (if no sticky cookie)",
    ),
    "override_header": Field(
        _edge_header,
        "x-route-override",
        "header naming a side to force (old, new or a label); always stripped",
    ),
    "override_secret_header": Field(
        _edge_header,
        "x-route-secret",
        "header carrying the override secret; always stripped",
    ),
    "override_secret": Field(
        _secret,
        None,
        "shared secret an override must carry; unset: overrides are ignored",
    ),
    "side_header": Field(
        _edge_header, "x-route-side", "header telling the origin which side it is"
    ),
}
SES_RECEIPTS_KEYS: dict[str, Field] = {
    "fallback_side": Field(
        _side_parser("ses_receipts"),
        REQUIRED,
        "queue used when no route item was ever read (the `old` side map: label, queue_url)",
    ),
    "task_name": Field(
        _task_name,
        "process-ses-result",
        'Celery task to send; it gets one argument {"Message": <SNS Message text>}',
    ),
}
KEYS = {
    "cloudfront": {**COMMON_KEYS, **CLOUDFRONT_KEYS},
    "ses_receipts": {**COMMON_KEYS, **SES_RECEIPTS_KEYS},
}
CONFIG_TYPES: dict[str, type[CloudFrontConfig] | type[SesReceiptsConfig]] = {
    "cloudfront": CloudFrontConfig,
    "ses_receipts": SesReceiptsConfig,
}
C = TypeVar("C", bound=SwitchConfig)


def parse_config(config_type: type[C], raw: object) -> C:
    """A validated ``config_type`` from a plain dict, else RouterConfigError naming the key."""
    kind = config_type.kind
    values = parse_fields(
        raw, KEYS[kind], where=f"the {kind} handler config", noun="key", error=RouterConfigError
    )
    config = config_type(**values)
    _check_relations(config)
    return config


def open_switch(
    config: SwitchConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    emit: Emit = print_line,
) -> Switch:
    """The switch a handler of ``config`` uses, reading its route item from DynamoDB with short
    timeouts (two attempts of ``store_timeout_seconds``; an eventually consistent read, the
    cheaper one, as a change may take a TTL to arrive anyway)."""
    dynamodb = AwsClient(
        "dynamodb",
        config.region,
        endpoint_url=config.endpoint_url,
        connect_timeout_seconds=config.store_timeout_seconds,
        read_timeout_seconds=config.store_timeout_seconds,
        attempts=2,
    )
    request = {"TableName": config.table, "Key": route_key(config.route)}

    def read_route_item() -> dict[str, Any] | None:
        return dynamodb.call("GetItem", request).get("Item")

    return Switch(
        config.route,
        config.kind,
        read_route_item,
        cache_ttl_seconds=config.cache_ttl_seconds,
        fallback=config.fallback_side,
        clock=clock,
        rng=rng,
        emit=emit,
        namespace=config.metrics_namespace,
    )


def _check_relations(config: SwitchConfig) -> None:
    if isinstance(config, CloudFrontConfig):
        headers = {
            name: getattr(config, name)
            for name in (
                "override_header",
                "override_secret_header",
                "side_header",
                "sticky_header",
            )
            if getattr(config, name) is not None
        }
        if len(set(headers.values())) != len(headers):
            raise RouterConfigError(
                f"the header config keys must name distinct headers, got {headers}"
            )


def packaged_config() -> dict[str, Any]:
    """The config dict packaged next to the handler modules (Lambda unpacks the zip into
    ``/var/task``), else a RouterConfigError saying how to build it. A plain file read: through
    ``importlib.resources`` it cost about 10 ms of the handlers' start (``-X importtime``)."""
    path = os.path.join(os.path.dirname(__file__), CONFIG_FILE_NAME)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        raise RouterConfigError(
            f"{path} is missing: a packaged handler reads its configuration from "
            f"{CONFIG_FILE_NAME} next to its module (Lambda@Edge has no environment variables). "
            "Build the zip with `handover route package ROUTE --out DIR`, or call "
            "make_handler(config) yourself"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RouterConfigError(f"{path} is not UTF-8 text ({exc})") from None
    return json_object(text, source=path)


def json_object(text: str, *, source: str) -> dict[str, Any]:
    """The JSON object in ``text``, else RouterConfigError naming ``source``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RouterConfigError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RouterConfigError(f"{source} must hold a JSON object, got {data!r}")
    return data


def packaged_handler(
    make_handler: Callable[[Mapping[str, Any]], Callable[[Any, Any], Any]],
) -> Callable[[Any, Any], Any]:
    """The module-level ``handler`` Lambda calls: built from the packaged config on the first
    event (so importing the module never fails), then reused by the container."""
    built: list[Callable[[Any, Any], Any]] = []

    def handler(event: Any, context: Any) -> Any:
        if not built:
            built.append(make_handler(packaged_config()))
        return built[0](event, context)

    return handler
