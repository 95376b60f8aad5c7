"""The ``beat_lock_*`` settings, read the Celery way: ``app.conf`` first, then the upper-case
environment variable of the same name, which wins.

One table, :data:`SETTINGS`, declares every key: how its value is read, its default and what it
means (the configuration reference is generated from it). Validated in one place; no value is
ever replaced by a default because it was falsy (a zero is an error, not "use the default"), and
an unknown key is an error with the nearest known name: ``beat_lock_critcal`` in ``app.conf`` or
``BEAT_LOCK_LEASE_SECOND`` in the environment must not leave a protection silently off.

Durations follow :mod:`beat_handover.scheduler.durations`: a number of seconds (``30``,
``"1.5"``) or text with units (``"30s"``, ``"10m"``), within each key's bounds.

Secrets: Celery masks a setting in ``celery inspect conf``, flower and the worker banner only if
its name matches API, TOKEN, KEY, SECRET, PASS, SIGNATURE or DATABASE, which
``beat_lock_url`` does not. So a lock store's password goes in ``beat_lock_password`` (masked), or
in the environment; a password inside ``app.conf.beat_lock_url`` is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from difflib import get_close_matches
from typing import Any, NamedTuple

from beat_handover.beat_lock.errors import ConfigError
from beat_handover.beat_lock.identity import validate_environment
from beat_handover.beat_lock.location import LockLocation, parse_lock_url, url_password
from beat_handover.beat_lock.timings import (
    DEFAULT_FALLBACK_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_RENEW_SECONDS,
    DEFAULT_SAFE_SECONDS,
    LeaseTimings,
)
from beat_handover.scheduler.durations import DurationRange, format_duration, parse_duration
from beat_handover.scheduler.metrics import StatsdTarget, parse_statsd_url

PREFIX = "beat_lock_"
CATCH_UP_POLICIES = ("latest", "all", "none")
MIN_GRACE_SECONDS = 5.0
HOUR, DAY = 3600.0, 86400.0


class Setting(NamedTuple):
    """One key: ``read(value, source)`` returns the value or raises ConfigError naming
    ``source`` (``app.conf.beat_lock_x`` or ``environment variable BEAT_LOCK_X``)."""

    read: Callable[[Any, str], Any]
    default: Any
    meaning: str


def _duration(high: float) -> Callable[[Any, str], float]:
    allowed = DurationRange(low=0, high=high)

    def read(value: Any, source: str) -> float:
        return parse_duration(value, allowed, source=source)

    return read


def _text(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise ConfigError(
            f"{source} must be a non-empty printable name of at most 200 characters, got {value!r}"
        )
    return value


def _url(value: Any, source: str) -> LockLocation | None:
    return None if value == "" else parse_lock_url(value, setting=source)


def _refuse_password_in_conf(conf: Any) -> None:
    """A password in ``app.conf.beat_lock_url`` is shown in clear wherever Celery shows the
    configuration, even when the environment variable overrides the key: refuse it."""
    url = conf.get("beat_lock_url") if hasattr(conf, "get") else None
    if isinstance(url, str) and url_password(url) is not None:
        raise ConfigError(
            "app.conf.beat_lock_url carries a password, which `celery inspect conf`, flower and "
            "the worker banner show in clear (Celery masks only keys with PASS, SECRET, KEY, "
            "TOKEN... in their name); leave it out of the URL and set beat_lock_password, or "
            "set the BEAT_LOCK_URL or BEAT_LOCK_PASSWORD environment variable"
        )


def _password(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source} must be a non-empty string (the lock store's password)")
    return value


def _environment(value: Any, source: str) -> str:
    return validate_environment(value, setting=source)


def _positive_int(value: Any, source: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source} must be a whole number of at least 1, got {value!r}")
    return value


def _count(value: Any, source: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 16:
        raise ConfigError(f"{source} must be a whole number from 0 to 16, got {value!r}")
    return value


def _flag(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{source} must be true or false, got {value!r}")


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


# Every beat_lock_* key; the configuration reference is generated from this table.
SETTINGS: dict[str, Setting] = {
    "beat_lock_url": Setting(
        _url,
        None,
        "where the lease lives: dynamodb://TABLE?region=REGION or redis://HOST:PORT/DB "
        "(required); no password in app.conf, see beat_lock_password",
    ),
    "beat_lock_password": Setting(
        _password,
        None,
        "password of a Redis lock store (redis://USER@HOST:PORT/DB), kept out of the URL so "
        "that Celery masks it in `celery inspect conf` and flower",
    ),
    "beat_lock_name": Setting(
        _text, "beat", "name of the lock; both environments must use the same"
    ),
    "beat_lock_environment": Setting(
        _environment, None, "this beat's environment label, e.g. paas or ecs (required to run beat)"
    ),
    "beat_lock_lease_seconds": Setting(
        _duration(HOUR),
        DEFAULT_LEASE_SECONDS,
        "a standby takes over after seeing the lease unchanged this long",
    ),
    "beat_lock_renew_seconds": Setting(
        _duration(HOUR), DEFAULT_RENEW_SECONDS, "how often the leader renews"
    ),
    "beat_lock_safe_seconds": Setting(
        _duration(HOUR),
        DEFAULT_SAFE_SECONDS,
        "the leader stops dispatching this long after the start of its last successful renewal",
    ),
    "beat_lock_poll_seconds": Setting(
        _duration(HOUR), DEFAULT_POLL_SECONDS, "how often a standby looks at the lease"
    ),
    "beat_lock_fallback_seconds": Setting(
        _duration(DAY),
        DEFAULT_FALLBACK_SECONDS,
        "a standby of another environment takes a lease pinned elsewhere (and moves the pin) "
        "after seeing nobody there renew it this long",
    ),
    "beat_lock_max_clock_skew_seconds": Setting(
        _duration(HOUR),
        DEFAULT_MAX_CLOCK_SKEW_SECONDS,
        "how far this host's wall clock may be from the lock store's (DynamoDB's Date header, "
        "Redis TIME) before it neither leads nor claims; at least 2 s (the Date header has "
        "one-second resolution), and how early a run can go at most",
    ),
    "beat_lock_critical": Setting(
        _names,
        (),
        "entry names that must never be sent late by surprise "
        "(catch-up policy none; quiet-window report)",
    ),
    "beat_lock_catch_up": Setting(
        _policies,
        {},
        "entry name -> latest | all | none: what to do with runs missed "
        "while no beat was leading (default latest; critical entries none)",
    ),
    "beat_lock_max_lateness_seconds": Setting(
        _duration(7 * DAY), HOUR, "a run later than this is counted as missed and never sent"
    ),
    "beat_lock_catch_up_limit": Setting(
        _positive_int, 100, "most missed runs of one entry that policy all sends at once"
    ),
    "beat_lock_guard_ttl_seconds": Setting(
        _duration(366 * DAY),
        7 * DAY,
        "how long the worker-side guard remembers that a run was executed",
    ),
    "beat_lock_repeat_safe": Setting(
        _names,
        (),
        "entry names (or globs) whose run may go out twice without harm: a run in doubt "
        "(claimed, publish not known) is sent again instead of reported; tasks based on "
        "OncePerSlotTask are treated so without being named",
    ),
    "beat_lock_redis_wait_replicas": Setting(
        _count,
        0,
        "Redis only: replicas that must have each lease write, claim and guard mark (WAIT) "
        "before it counts, so a failover to a replica loses none; 0: do not wait",
    ),
    "beat_lock_redis_wait_timeout_seconds": Setting(
        _duration(60),
        0.5,
        "Redis only: how long a write waits for beat_lock_redis_wait_replicas; a write not "
        "replicated by then counts as unanswered (asked again, nothing published on it)",
    ),
    "beat_lock_statsd_url": Setting(
        parse_statsd_url,
        None,
        "where beat sends its metrics: statsd://HOST:PORT/PREFIX (add ?tags=graphite for a "
        "statsd without tags); unset: the STATSD_HOST, STATSD_PORT and STATSD_PREFIX "
        "environment variables, or no statsd",
    ),
    "beat_lock_metrics_emf": Setting(
        _flag,
        False,
        "also write beat's metrics as CloudWatch EMF JSON lines on standard output (ECS "
        "forwards them to CloudWatch Logs, which makes them metrics)",
    ),
}


@dataclass(frozen=True)
class BeatLockSettings:
    """Validated ``beat_lock_*`` settings of one app (and process environment). Build it with
    :meth:`from_app`; the defaults are :data:`SETTINGS`'."""

    location: LockLocation | None
    name: str
    environment: str | None
    timings: LeaseTimings
    critical: tuple[str, ...]
    catch_up: Mapping[str, str]
    max_lateness_seconds: float
    catch_up_limit: int
    guard_ttl_seconds: float
    repeat_safe: tuple[str, ...] = ()
    statsd: StatsdTarget | None = None
    metrics_emf: bool = False

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

    def with_location(self, url: str, *, setting: str) -> BeatLockSettings:
        """These settings with the lock URL ``url`` (a command-line override) in place of
        ``beat_lock_url``; the password setting still applies."""
        location = parse_lock_url(url, setting=setting)
        password = None if self.location is None else self.location.password
        return replace(self, location=_with_password(location, password, setting))

    @classmethod
    def from_app(cls, app: Any, environ: Mapping[str, str] | None = None) -> BeatLockSettings:
        """Read and validate the settings of a Celery app (``None``: environment only)."""
        environ = os.environ if environ is None else environ
        conf = getattr(app, "conf", None) or {}
        _refuse_unknown(conf, environ)
        _refuse_password_in_conf(conf)
        sources: dict[str, str] = {}

        def value(key: str) -> Any:
            setting = SETTINGS[key]
            env_key = key.upper()
            if env_key in environ:
                sources[key] = f"environment variable {env_key}"
                raw = environ[env_key]
            else:
                sources[key] = f"app.conf.{key}"
                raw = conf.get(key) if hasattr(conf, "get") else None
            return setting.default if raw is None else setting.read(raw, sources[key])

        location = value("beat_lock_url")
        password = value("beat_lock_password")
        if location is not None:
            location = _with_password(location, password, sources["beat_lock_url"])
            location = _with_replicas(
                location,
                value("beat_lock_redis_wait_replicas"),
                value("beat_lock_redis_wait_timeout_seconds"),
                sources,
            )
        durations = {
            key: value(f"beat_lock_{key}")
            for key in ("lease_seconds", "renew_seconds", "safe_seconds", "poll_seconds")
        }
        try:
            timings = LeaseTimings(
                **durations,
                fallback_seconds=value("beat_lock_fallback_seconds"),
                max_clock_skew_seconds=value("beat_lock_max_clock_skew_seconds"),
            )
        except ConfigError as exc:
            raise ConfigError(f"beat_lock_* durations: {exc}") from None
        settings = cls(
            location=location,
            name=value("beat_lock_name"),
            environment=value("beat_lock_environment"),
            timings=timings,
            critical=value("beat_lock_critical"),
            catch_up=value("beat_lock_catch_up"),
            max_lateness_seconds=value("beat_lock_max_lateness_seconds"),
            catch_up_limit=value("beat_lock_catch_up_limit"),
            guard_ttl_seconds=value("beat_lock_guard_ttl_seconds"),
            repeat_safe=value("beat_lock_repeat_safe"),
            statsd=value("beat_lock_statsd_url"),
            metrics_emf=value("beat_lock_metrics_emf"),
        )
        if settings.max_lateness_seconds < settings.grace_seconds:
            raise ConfigError(
                f"{sources['beat_lock_max_lateness_seconds']} "
                f"({format_duration(settings.max_lateness_seconds)}) must be at least the "
                f"on-time grace ({format_duration(settings.grace_seconds)} = max(2 x "
                f"beat_lock_poll_seconds, {format_duration(MIN_GRACE_SECONDS)})): a run that is "
                "on time is always sent"
            )
        return settings


def _with_password(location: LockLocation, password: str | None, url_source: str) -> LockLocation:
    if password is None:
        return location
    if location.backend != "redis":
        raise ConfigError(
            f"beat_lock_password is set, but {url_source} names {location.describe()}, which "
            "takes no password (DynamoDB uses the process's AWS credentials); unset it"
        )
    if url_password(location.url) is not None:
        raise ConfigError(
            f"{url_source} carries a password and beat_lock_password is set too; keep only one "
            "(beat_lock_password, so that Celery masks it)"
        )
    return replace(location, password=password)


def _with_replicas(
    location: LockLocation, replicas: int, timeout: float, sources: Mapping[str, str]
) -> LockLocation:
    if replicas and location.backend != "redis":
        raise ConfigError(
            f"{sources['beat_lock_redis_wait_replicas']} is {replicas}, but the lock is in "
            f"{location.describe()}, which replicates every write itself; unset it"
        )
    if replicas and timeout <= 0:
        raise ConfigError(
            f"{sources['beat_lock_redis_wait_timeout_seconds']} must be more than 0 when "
            "beat_lock_redis_wait_replicas is set (how long each write waits for a replica)"
        )
    return replace(location, wait_replicas=replicas, wait_timeout_seconds=timeout)


def _refuse_unknown(conf: Any, environ: Mapping[str, str]) -> None:
    """ConfigError for a ``beat_lock_*`` key in ``conf`` or ``BEAT_LOCK_*`` variable in
    ``environ`` that is not in :data:`SETTINGS`, naming the nearest known one."""
    keys = list(conf.keys()) if hasattr(conf, "keys") else []
    for key in keys:
        if isinstance(key, str) and key.lower().startswith(PREFIX) and key not in SETTINGS:
            raise ConfigError(_unknown(f"app.conf.{key}", key, list(SETTINGS)))
    variables = [key.upper() for key in SETTINGS]
    for key in environ:
        if key.upper().startswith(PREFIX.upper()) and key not in variables:
            raise ConfigError(_unknown(f"environment variable {key}", key, variables))


def _unknown(where: str, key: str, known: list[str]) -> str:
    """The refusal of ``key``; the guess compares the names after the shared prefix."""
    by_suffix = {name.lower().removeprefix(PREFIX): name for name in known}
    close = get_close_matches(key.lower().removeprefix(PREFIX), list(by_suffix), n=1, cutoff=0.6)
    hint = f"did you mean {by_suffix[close[0]]}? " if close else ""
    return (
        f"{where} is not a beat_lock setting, so it would be ignored; {hint}the settings are "
        f"{', '.join(known)}"
    )
