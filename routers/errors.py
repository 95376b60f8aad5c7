"""Every error the routers raise on purpose, in one tree.

    RouterError                   base
    ├── RouterConfigError         terminal: a handler config key, route definition or argument
    │                             is wrong; the message names the key and the value seen
    ├── MalformedRoute            terminal: a stored route item has a shape this code never writes
    ├── RouteNotFound             terminal: no route item of that name
    ├── RouteConflict             the route exists already, or changed while we wrote it
    ├── RouteStoreMissing         terminal: the DynamoDB table does not exist
    ├── RouteStoreUnavailable     retryable: network, timeout, throttling
    └── UnprocessableEvent        a Lambda event (or some of its records) could not be handled

``routers`` ships alone in a Lambda zip, so it cannot use ``beat_handover.beat_lock.errors``;
``handover route`` translates these into the toolkit's errors and exit codes.
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the routers raise on purpose."""

    retryable: bool = False


class RouterConfigError(RouterError, ValueError):
    """A handler config key, a route definition or an argument is wrong."""


class MalformedRoute(RouterError):
    """A stored route item has a shape or value this code never writes."""


class RouteNotFound(RouterError):
    """No route item of that name."""


class RouteConflict(RouterError):
    """The route exists already, or another writer changed it first."""


class RouteStoreMissing(RouterError):
    """The DynamoDB table does not exist."""


class RouteStoreUnavailable(RouterError):
    """DynamoDB could not be asked in time. Retrying later can help."""

    retryable = True


class UnprocessableEvent(RouterError):
    """A Lambda event, or some records of it, could not be handled; Lambda should retry it."""
