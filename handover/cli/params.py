"""What the commands share on the command line: the connection options (accepted before or after
the command, ``handover -A proj status`` and ``handover status -A proj``), durations with their
bounds, environment labels and ``--json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.identity import validate_environment
from beat_handover.handover.connection import Connection
from beat_handover.routers.route_format import MAX_CACHE_TTL_SECONDS
from beat_handover.scheduler.durations import DurationRange, parse_duration

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "beat_handover.handover.connection"
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

# Where the usual unit is minutes and a misread weakens a safety check, a unit is required.
GUARD = DurationRange(low=1, high=DAY, off="no check", bare=False)
TIMEOUT = DurationRange(low=1, high=HOUR)
INTERVAL = DurationRange(low=0.1, high=HOUR)
QUIET_GUARD = DurationRange(low=1, high=DAY, off="none", bare=False)
MIN_LENGTH = DurationRange(low=1, high=7 * DAY, off="any length", bare=False)
CACHE_TTL = DurationRange(low=1, high=MAX_CACHE_TTL_SECONDS, whole=True)
ORIGIN_TIMEOUT = DurationRange(low=1, high=HOUR, whole=True)
BAKE = DurationRange(low=1, high=7 * DAY, whole=True)
DRAIN_TIMEOUT = DurationRange(low=1, high=7 * DAY)


class Duration(click.ParamType):
    """A duration as :mod:`beat_handover.scheduler.durations` reads it, within ``allowed``, in
    seconds."""

    name = "duration"

    def __init__(self, allowed: DurationRange) -> None:
        self.allowed = allowed

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        source = param.opts[0] if param is not None else "duration"
        try:
            return parse_duration(value, self.allowed, source=source)
        except ConfigError as exc:
            self.fail(str(exc).removeprefix(f"{source} "), param, ctx)


def environment(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option callback: ``value`` if it is a usable environment label."""
    if value is None:
        return None
    option = param.opts[0]
    try:
        return validate_environment(value, setting=option)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{option} ")) from None


def json_option(help_text: str) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def get_connection(ctx: click.Context | None = None) -> Connection:
    """The connection of this command line, kept on its root context."""
    ctx = ctx or click.get_current_context()
    meta = ctx.find_root().meta
    if _META_KEY not in meta:
        meta[_META_KEY] = Connection()
    return meta[_META_KEY]


def _remember(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            connection = get_connection(ctx)
            setattr(connection, field, value)
            if field == "app_spec":
                # A later -A wins over an app handed over by `celery -A` (or an earlier -A).
                connection.app = None

    return callback


def connection_options(func: F) -> F:
    """Add -A/--app, --lock-url and --lock-name to a group or command."""
    options = [
        click.option(
            "-A",
            "--app",
            "app_spec",
            expose_value=False,
            callback=_remember("app_spec"),
            metavar="APP",
            help="Celery app to read beat_lock_* settings from (as celery -A).",
        ),
        click.option(
            "--lock-url",
            expose_value=False,
            callback=_remember("lock_url"),
            metavar="URL",
            help="Lease store, overriding beat_lock_url: dynamodb://TABLE?region=R or "
            "redis://HOST:PORT/DB.",
        ),
        click.option(
            "--lock-name",
            expose_value=False,
            callback=_remember("lock_name"),
            metavar="NAME",
            help="Lock name, overriding beat_lock_name.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
