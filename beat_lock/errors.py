"""Every error the toolkit raises on purpose, in one tree.

    BeatLockError                 base: catch this at the top of a CLI or service
    ├── ConfigError               terminal: a setting, URL or argument is wrong; fix it and restart
    ├── StoreError                the lease store did not do what was asked
    │   ├── StoreUnavailable      retryable: network, timeout, throttling; try again later
    │   ├── StoreMissing          terminal: no such table or key space (run `handover init`)
    │   └── CorruptRecord         terminal: a stored item does not have the shape we write
    └── LeaseLost                 terminal for this tenure: stop acting, rejoin as a standby

Messages say what was wrong, the value seen, and what to do, in the style of
``celery.schedules.CRON_PATTERN_INVALID``.
"""

from __future__ import annotations


class BeatLockError(Exception):
    """Base of every error this toolkit raises on purpose."""

    retryable: bool = False


class ConfigError(BeatLockError, ValueError):
    """A configuration value, URL or argument is wrong. Retrying cannot help."""


class StoreError(BeatLockError):
    """The lease store did not do what was asked."""


class StoreUnavailable(StoreError):
    """The store could not be reached in time. Retrying later can help."""

    retryable = True


class StoreMissing(StoreError):
    """The table (or key space) the URL names does not exist."""


class CorruptRecord(StoreError):
    """A stored item has a shape this code never writes."""


class LeaseLost(BeatLockError):
    """This participant no longer holds the lease it thought it held."""
