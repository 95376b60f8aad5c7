"""What a command works on: the Celery app, its ``beat_lock_*`` settings and the lease store,
as the connection options name them (``-A``, ``--lock-url``, ``--lock-name``), opened on first
use."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import Any

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.store import LeaseStore
from beat_handover.beat_lock.stores import open_store
from beat_handover.scheduler.settings import SETTINGS, BeatLockSettings


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
            settings = settings.with_location(self.lock_url, setting="--lock-url")
        if self.lock_name:
            name = SETTINGS["beat_lock_name"].read(self.lock_name, "--lock-name")
            settings = replace(settings, name=name)
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
