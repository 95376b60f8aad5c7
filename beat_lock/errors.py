"""Every error the toolkit raises on purpose, in one tree.

    BeatLockError                   base: catch this at the top of a CLI or service
    ├── ConfigError                 terminal: a setting, URL, argument or message header is
    │   │                           wrong; fix it and run again (also a ValueError)
    │   └── BeatStartupError        celery beat -S leased: one line, exit 78 (scheduler.leased)
    ├── StoreError                  the lease store did not do what was asked
    │   ├── StoreUnavailable        retryable: refused, timed out, not resolved, throttled
    │   ├── StoreMissing            terminal: no such table or key space (run `handover init`)
    │   ├── CorruptRecord           terminal: a stored item does not have the shape we write
    │   └── WriteConflict           another writer changed the item first; nothing was
    │                               written: look again, then retry
    ├── LeaseLost                   terminal for this tenure: stop acting, rejoin as a standby
    ├── PhaseUnknown                an interval entry has no claimed slot to count from yet
    │                               (scheduler.errors)
    └── UnsupportedSchedule         a schedule whose fire times cannot be computed exactly
                                    (scheduler.errors)

The routers ship alone in a Lambda zip, so they have a tree of their own
(:mod:`beat_handover.routers.errors`); ``handover route`` maps each of those onto this one.

Messages say what was wrong, the value seen, and what to do, in the style of
``celery.schedules.CRON_PATTERN_INVALID``; none of them shows a password.
"""

from __future__ import annotations


class BeatLockError(Exception):
    """Base of every error this toolkit raises on purpose."""

    retryable: bool = False


class ConfigError(BeatLockError, ValueError):
    """A configuration value, URL, argument or message header is wrong. Retrying cannot help."""


class StoreError(BeatLockError):
    """The lease store did not do what was asked."""


class StoreUnavailable(StoreError):
    """The store could not be reached, or did not answer in time. Retrying later can help."""

    retryable = True


class StoreMissing(StoreError):
    """The table (or key space) the URL names does not exist."""


class CorruptRecord(StoreError):
    """A stored item has a shape this code never writes."""


class WriteConflict(StoreError):
    """A conditional write found the item changed by another writer; nothing was written."""


class LeaseLost(BeatLockError):
    """This participant no longer holds the lease it thought it held."""
