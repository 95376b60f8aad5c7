"""The ``beat_lock_*`` settings, read the Celery way: ``app.conf`` first, then the upper-case
environment variable of the same name, which wins. Validated in one place; no value is ever
replaced by a default because it was falsy (a zero is an error, not "use the default")."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.identity import validate_environment
from beat_handover.beat_lock.location import LockLocation, parse_lock_url
from beat_handover.beat_lock.timings import (
    DEFAULT_FALLBACK_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_RENEW_SECONDS,
    DEFAULT_SAFE_SECONDS,
    LeaseTimings,
)

CATCH_UP_POLICIES = ("latest", "all", "none")
DEFAULT_LOCK_NAME = "beat"
DEFAULT_MAX_LATENESS_SECONDS = 3600.0
DEFAULT_CATCH_UP_LIMIT = 100
DEFAULT_GUARD_TTL_SECONDS = 7 * 24 * 3600.0
MIN_GRACE_SECONDS = 5.0

# key: (default, meaning) -- the README's configuration reference is generated from this table.
SETTINGS: dict[str, tuple[Any, str]] = {
    "beat_lock_url": (
        None,
        "where the lease lives: dynamodb://TABLE?region=REGION or redis://HOST:PORT/DB (required)",
    ),
    "beat_lock_name": (DEFAULT_LOCK_NAME, "name of the lock; both environments must use the same"),
    "beat_lock_environment": (
        None,
        "this beat's environment label, e.g. paas or ecs (required to run beat)",
    ),
    "beat_lock_lease_seconds": (
        DEFAULT_LEASE_SECONDS,
        "a standby takes over after seeing the lease unchanged this long",
    ),
    "beat_lock_renew_seconds": (DEFAULT_RENEW_SECONDS, "how often the leader renews"),
    "beat_lock_safe_seconds": (
        DEFAULT_SAFE_SECONDS,
        "the leader stops dispatching this long after the start of its last successful renewal",
    ),
    "beat_lock_poll_seconds": (DEFAULT_POLL_SECONDS, "how often a standby looks at the lease"),
    "beat_lock_fallback_seconds": (
        DEFAULT_FALLBACK_SECONDS,
        "a standby of another environment "
        "takes a lease pinned elsewhere (and moves the pin) after "
        "seeing nobody there renew it this long",
    ),
    "beat_lock_critical": (
        (),
        "entry names that must never be sent late by surprise "
        "(catch-up policy none; quiet-window report)",
    ),
    "beat_lock_catch_up": (
        {},
        "entry name -> latest | all | none: what to do with runs missed "
        "while no beat was leading (default latest; critical entries none)",
    ),
    "beat_lock_max_lateness_seconds": (
        DEFAULT_MAX_LATENESS_SECONDS,
        "a run later than this is counted as missed and never sent",
    ),
    "beat_lock_catch_up_limit": (
        DEFAULT_CATCH_UP_LIMIT,
        "most missed runs of one entry that policy all sends at once",
    ),
    "beat_lock_guard_ttl_seconds": (
        DEFAULT_GUARD_TTL_SECONDS,
        "how long the worker-side guard remembers that a run was executed",
    ),
}


@dataclass(frozen=True)
class BeatLockSettings:
    """Validated ``beat_lock_*`` settings of one app (and process environment)."""

    location: LockLocation | None
    name: str
    environment: str | None
    timings: LeaseTimings
    critical: tuple[str, ...] = ()
    catch_up: Mapping[str, str] = field(default_factory=dict)
    max_lateness_seconds: float = DEFAULT_MAX_LATENESS_SECONDS
    catch_up_limit: int = DEFAULT_CATCH_UP_LIMIT
    guard_ttl_seconds: float = DEFAULT_GUARD_TTL_SECONDS

    @property
    def grace_seconds(self) -> float:
        """How old a slot may be and still count as on time (sent whatever the policy): two
        polls, so a standby that just took over still sends what fell due while it looked, and
        at least 5 s, so a loaded host's stalls do not turn runs into catch-up decisions."""
        return max(2 * self.timings.poll_seconds, MIN_GRACE_SECONDS)

    def require_location(self) -> LockLocation:
        if self.location is None:
            raise ConfigError(
                "beat_lock_url is not set: set app.conf.beat_lock_url or the BEAT_LOCK_URL "
                "environment variable to dynamodb://TABLE?region=REGION or redis://HOST:PORT/DB"
            )
        return self.location

    def require_environment(self) -> str:
        if self.environment is None:
            raise ConfigError(
                "beat_lock_environment is not set: every beat must say which environment it runs "
                "in (e.g. paas or ecs); set app.conf.beat_lock_environment or the "
                "BEAT_LOCK_ENVIRONMENT environment variable"
            )
        return self.environment

    def policy_for(self, entry: str) -> str:
        """The catch-up policy of ``entry``: configured, else none if critical, else latest."""
        if entry in self.catch_up:
            return self.catch_up[entry]
        return "none" if entry in self.critical else "latest"

    @classmethod
    def from_app(cls, app: Any, environ: Mapping[str, str] | None = None) -> BeatLockSettings:
        """Read and validate the settings of a Celery app (``None``: environment only)."""
        environ = os.environ if environ is None else environ
        conf = getattr(app, "conf", None) or {}

        def raw(key: str) -> tuple[Any, str]:
            env_key = key.upper()
            if env_key in environ:
                return environ[env_key], f"environment variable {env_key}"
            value = conf.get(key) if hasattr(conf, "get") else None
            if value is None:
                return SETTINGS[key][0], f"default of {key}"
            return value, f"app.conf.{key}"

        url, url_source = raw("beat_lock_url")
        location = None if url in (None, "") else parse_lock_url(url, setting=url_source)
        name, name_source = raw("beat_lock_name")
        if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
            raise ConfigError(
                f"{name_source} must be a non-empty printable name of at most 200 characters, "
                f"got {name!r}"
            )
        environment, env_source = raw("beat_lock_environment")
        if environment is not None:
            environment = validate_environment(environment, setting=env_source)
        seconds = {
            key: _seconds(*raw(f"beat_lock_{key}"))
            for key in (
                "lease_seconds",
                "renew_seconds",
                "safe_seconds",
                "poll_seconds",
                "fallback_seconds",
            )
        }
        try:
            timings = LeaseTimings(**seconds)
        except ConfigError as exc:
            raise ConfigError(f"beat_lock_* durations: {exc}") from None
        critical = _names(*raw("beat_lock_critical"))
        catch_up = _policies(*raw("beat_lock_catch_up"))
        lateness = _seconds(*raw("beat_lock_max_lateness_seconds"))
        limit_value, limit_source = raw("beat_lock_catch_up_limit")
        limit = _positive_int(limit_value, limit_source)
        guard_ttl = _seconds(*raw("beat_lock_guard_ttl_seconds"))
        settings = cls(
            location, name, environment, timings, critical, catch_up, lateness, limit, guard_ttl
        )
        if lateness < settings.grace_seconds:
            raise ConfigError(
                f"{raw('beat_lock_max_lateness_seconds')[1]} ({lateness:g}) must be at least the "
                f"on-time grace ({settings.grace_seconds:g} s = max(2 x beat_lock_poll_seconds, "
                f"{MIN_GRACE_SECONDS:g} s)): a run that is on time is always sent"
            )
        return settings


def _seconds(value: Any, source: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(
                f"{source} must be a number of seconds such as 30 or 1.5, got {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{source} must be greater than 0 seconds, got {value!r}")
    return float(value)


def _positive_int(value: Any, source: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source} must be a whole number of at least 1, got {value!r}")
    return value


def _names(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ConfigError(
            f"{source} must be a list of entry names (or a comma-separated string), got {value!r}"
        )
    return tuple(value)


def _policies(value: Any, source: str) -> dict[str, str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{source} is not valid JSON ({exc}): {value!r}") from None
        else:
            pairs = [part.strip() for part in text.split(",") if part.strip()]
            bad = [pair for pair in pairs if pair.count("=") != 1]
            if bad:
                raise ConfigError(
                    f"{source} must be a JSON object or 'entry=policy,entry=policy'; "
                    f"cannot read {bad[0]!r}"
                )
            value = dict(
                (key.strip(), policy.strip()) for key, policy in (pair.split("=") for pair in pairs)
            )
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source} must map entry names to a policy, got {value!r}")
    for entry, policy in value.items():
        if policy not in CATCH_UP_POLICIES:
            raise ConfigError(
                f"{source}: policy for {entry!r} must be one of {', '.join(CATCH_UP_POLICIES)}, "
                f"got {policy!r}"
            )
    return dict(value)
