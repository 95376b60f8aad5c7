"""Connection options shared by every ``handover`` command, accepted before or after the
subcommand (``handover -A proj status`` and ``handover status -A proj``), and what they open:
the Celery app, its ``beat_lock_*`` settings and the lease store."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.scheduler.settings import BeatLockSettings

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "beat_handover.handover.connection"


@dataclass
class Connection:
    """What the connection options said; later options (after the subcommand) win."""

    app_spec: str | None = None
    lock_url: str | None = None
    lock_name: str | None = None
    app: Any = None  # a Celery app handed over by `celery -A proj handover`
    _store: LeaseStore | None = None

    def load_app(self) -> Any:
        """The Celery app named by ``-A``, or None when no app was given."""
        if self.app is None and self.app_spec:
            self.app = load_celery_app(self.app_spec)
        return self.app

    def settings(self) -> BeatLockSettings:
        """``beat_lock_*`` from the app, overridden by environment variables, then by options."""
        settings = BeatLockSettings.from_app(self.load_app())
        if self.lock_url:
            location = parse_lock_url(self.lock_url, setting="--lock-url")
            settings = replace(settings, location=location)
        if self.lock_name:
            settings = replace(settings, name=self.lock_name)
        return settings

    def store(self) -> LeaseStore:
        if self._store is None:
            settings = self.settings()
            self._store = open_store(settings.require_location(), settings.timings)
        return self._store


def load_celery_app(spec: str) -> Any:
    """Import a Celery app the way ``celery -A`` does; a clear ConfigError if it cannot."""
    from celery.app.utils import find_app

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return find_app(spec)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load the Celery app {spec!r} ({exc.__class__.__name__}: {exc}); "
            "give -A the module (proj) or module:attribute (proj.celery:app), run from the "
            "directory that contains it"
        ) from None


def get_connection(ctx: click.Context | None = None) -> Connection:
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
