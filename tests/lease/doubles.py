"""Test doubles for the lease state machine: a fake monotonic clock, and a wrapper around a REAL
store that can drop a request or lose its answer (the write happened, the caller hears nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beat_handover.beat_lock.errors import StoreUnavailable
from beat_handover.beat_lock.store import LeaseStore


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FaultyStore:
    """Delegates to a real store; ``fail[method]`` makes calls of that method raise
    StoreUnavailable, either ``"before"`` they reach the store or ``"after"`` (answer lost).
    ``during[method]`` runs while a call is in flight (e.g. to move the fake clock). ``calls``
    names every call; ``seen`` keeps each call's keyword arguments too."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.fail: dict[str, str] = {}
        self.during: dict[str, Callable[[], None]] = {}
        self.calls: list[str] = []
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        real = getattr(self.store, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            self.seen.append((method, kwargs))
            if self.fail.get(method) == "before":
                raise StoreUnavailable(f"test: {method} dropped")
            if method in self.during:
                self.during[method]()
            result = real(*args, **kwargs)
            if self.fail.get(method) == "after":
                raise StoreUnavailable(f"test: answer of {method} lost")
            return result

        return call
