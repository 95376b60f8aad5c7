"""Why a store could not be reached, in words an operator can act on: nothing listens there
(the connection was refused), the host name does not resolve (a wrong region or endpoint, or no
DNS), or it did not answer in time. Both backends word their :class:`StoreUnavailable` with it.

The network error is found on the exception's chain (``__cause__``, ``__context__``, and
botocore's ``error`` argument), where redis-py and botocore leave the socket's own error.
"""

from __future__ import annotations

import socket

REFUSED, UNRESOLVED, TIMED_OUT, OTHER = "refused", "unresolved", "timed-out", "other"


def reason(exc: BaseException) -> str:
    """``refused``, ``unresolved``, ``timed-out`` or ``other``, from the first network error on
    ``exc``'s chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return REFUSED
        if isinstance(current, socket.gaierror):
            return UNRESOLVED
        if isinstance(current, TimeoutError) or "timeout" in type(current).__name__.lower():
            return TIMED_OUT
        wrapped = getattr(current, "kwargs", {}).get("error")
        following = current.__cause__ or current.__context__
        current = following or (wrapped if isinstance(wrapped, BaseException) else None)
    return OTHER


def explain(exc: BaseException, *, names: str) -> str:
    """What went wrong and what to check; ``names`` says where the host name and port come
    from (``the host and port in beat_lock_url``)."""
    why = reason(exc)
    if why == REFUSED:
        return (
            f"the connection was refused, so nothing listens there; check {names} and that the "
            "server is running"
        )
    if why == UNRESOLVED:
        return f"the host name does not resolve; check {names} (or this machine's DNS)"
    if why == TIMED_OUT:
        return f"it did not answer in time ({exc.__class__.__name__}: {exc})"
    return f"{exc.__class__.__name__}: {exc}"


def unreachable(what: str, exc: BaseException, *, names: str) -> str:
    """The message of a StoreUnavailable for ``what`` (``Redis at redis://...``)."""
    return f"{what} could not be reached: {explain(exc, names=names)}; retrying later can help"
