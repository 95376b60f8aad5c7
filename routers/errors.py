"""Every error the routers raise on purpose, in one tree.

    RouterError                   base
    ├── RouterConfigError         terminal: a handler config key, route definition or argument
    │                             is wrong; the message names the key and the value seen
    ├── MalformedRoute            terminal: a stored route item has a shape this code never writes
    ├── RouteNotFound             terminal: no route item of that name
    ├── RouteConflict             the route exists already, or changed while we wrote it
    ├── RouteStoreMissing         terminal: the DynamoDB table does not exist
    ├── RouteStoreUnavailable     retryable: network, timeout, throttling
    ├── AwsCallFailed             a handler's own AWS call (DynamoDB GetItem, SQS SendMessage)
    │   │                         failed; carries the AWS error code and HTTP status
    │   ├── AwsUnavailable        retryable: network, timeout, throttling, HTTP 5xx, a corrupt
    │   │                         answer, still failing after the client's attempts
    │   └── AwsRequestRefused     terminal: AWS said no (credentials, permission, a table or
    │                             queue that does not exist), or there are no credentials
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


class AwsCallFailed(RouterError):
    """An AWS call of a handler failed. ``code`` is AWS's error code (``ThrottlingException``,
    ``AccessDeniedException``) or the Python exception's name for a network failure; ``status``
    the HTTP status, or None if no answer came."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AwsUnavailable(AwsCallFailed):
    """The call kept failing in a way a later retry can mend."""

    retryable = True


class AwsRequestRefused(AwsCallFailed):
    """AWS refused the call, or it could not be signed; repeating it unchanged will not help."""


class UnprocessableEvent(RouterError):
    """A Lambda event, or some records of it, could not be handled; Lambda should retry it."""
