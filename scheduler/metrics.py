"""Beat's metrics, for alarms: statsd over UDP and, optionally, CloudWatch EMF lines on stdout.

Where they go: ``beat_lock_statsd_url`` (``statsd://HOST:PORT/PREFIX``), else the usual
``STATSD_HOST`` (which switches statsd on), ``STATSD_PORT`` (default 8125) and ``STATSD_PREFIX``
(default ``beat_lock``) environment variables; and with ``beat_lock_metrics_emf`` one CloudWatch
Embedded Metric Format JSON line per value on the process's standard output, which the ECS log
driver forwards to CloudWatch Logs (namespace :data:`EMF_NAMESPACE`).

What (:data:`METRICS`; docs/deploy.md has the alarms to set on them): whether this beat leads,
and the standbys alive (every :data:`GAUGE_SECONDS`, from a thread of its own); each run
claimed, sent (with its lateness) or refused; each claimed run whose publish failed; each
in-doubt slot; each renewal's latency and each failed renewal.

statsd lines carry their dimensions as DogStatsD tags (``name:1|c|#lock:beat,entry:letters``,
read by the CloudWatch agent, Datadog, Telegraf and statsd_exporter), or with ``?tags=graphite``
appended to the name (``beat_lock.runs.sent.beat.ecs.letters``) for a plain statsd.

Never in the way: metrics cannot block or stop beat. A UDP send does not wait (the socket is
non-blocking) and the statsd host name is resolved on the metrics thread, never on beat's; a
failure to send is logged once (and once more when sending works again), then swallowed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

from beat_handover.beat_lock.errors import ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from beat_handover.beat_lock.lease import Lease
    from beat_handover.beat_lock.store import LeaseStore
    from beat_handover.scheduler.settings import BeatLockSettings

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "beat_lock"
DEFAULT_STATSD_PORT = 8125
EMF_NAMESPACE = "BeatHandover/Beat"
GAUGE_SECONDS = 10.0  # leader and standbys gauges at least this often (renew_seconds if shorter)
TAG_STYLES = ("dogstatsd", "graphite")
_PREFIX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Metric(NamedTuple):
    """One metric: its statsd type, EMF unit, dimensions and meaning (docs/deploy.md)."""

    statsd_type: str  # g (gauge), c (counter) or ms (timer)
    unit: str  # CloudWatch unit
    dimensions: tuple[str, ...]  # besides lock
    meaning: str


METRICS: dict[str, Metric] = {
    "leader": Metric("g", "Count", ("environment",), "1 while this beat leads, else 0"),
    "standbys": Metric(
        "g", "Count", ("environment",), "standbys alive per environment, as the leader sees them"
    ),
    "runs.claimed": Metric("c", "Count", ("environment", "entry"), "a run's slot claimed"),
    "runs.sent": Metric("c", "Count", ("environment", "entry"), "a claimed run published"),
    "runs.lateness": Metric(
        "ms", "Milliseconds", ("environment", "entry"), "publish time minus the run's slot"
    ),
    "claims.refused": Metric(
        "c",
        "Count",
        ("environment", "entry", "reason"),
        "a claim the store refused: already-claimed or lease-lost",
    ),
    "publish.failed": Metric(
        "c", "Count", ("environment", "entry"), "a claimed run that could not be published"
    ),
    "runs.in_doubt": Metric(
        "c", "Count", ("environment", "entry"), "a slot claimed that may or may not have gone out"
    ),
    "renewal.latency": Metric(
        "ms", "Milliseconds", ("environment",), "time a successful renewal took"
    ),
    "renewal.failed": Metric(
        "c", "Count", ("environment", "reason"), "a renewal refused, or unanswered"
    ),
}


@dataclass(frozen=True)
class StatsdTarget:
    """Where statsd lines go, and how their dimensions are written."""

    host: str
    port: int
    prefix: str = DEFAULT_PREFIX
    tags: str = "dogstatsd"

    def describe(self) -> str:
        style = "" if self.tags == "dogstatsd" else f"?tags={self.tags}"
        return f"statsd://{self.host}:{self.port}/{self.prefix}{style}"


def parse_statsd_url(value: Any, source: str) -> StatsdTarget | None:
    """``statsd://HOST[:PORT][/PREFIX][?tags=dogstatsd|graphite]``; the empty string is None
    (no statsd). ConfigError naming `source` for anything else."""
    if value == "":
        return None
    example = "statsd://127.0.0.1:8125/beat_lock"
    if not isinstance(value, str):
        raise ConfigError(f"{source} must be a URL such as {example}, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme != "statsd" or not parts.hostname:
        raise ConfigError(
            f"{source} must be a URL such as {example} (scheme statsd, a host), got {value!r}"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{source}: the port must be 1-65535, got {value!r}")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    query = parse_qs(parts.query, keep_blank_values=True)
    tags = query.pop("tags", ["dogstatsd"])[-1]
    if query or tags not in TAG_STYLES:
        raise ConfigError(
            f"{source}: the only option is tags={' or tags='.join(TAG_STYLES)}, got {value!r}"
        )
    return StatsdTarget(parts.hostname, port or DEFAULT_STATSD_PORT, _prefix(prefix, source), tags)


def statsd_from_environ(environ: Mapping[str, str]) -> StatsdTarget | None:
    """The usual ``STATSD_HOST`` / ``STATSD_PORT`` / ``STATSD_PREFIX`` variables: statsd is on
    when STATSD_HOST is set."""
    host = environ.get("STATSD_HOST", "").strip()
    if not host:
        return None
    port_text = environ.get("STATSD_PORT", str(DEFAULT_STATSD_PORT)).strip()
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(
            f"environment variable STATSD_PORT must be a port number 1-65535, got {port_text!r}"
        )
    prefix = environ.get("STATSD_PREFIX", DEFAULT_PREFIX).strip()
    return StatsdTarget(host, int(port_text), _prefix(prefix, "environment variable STATSD_PREFIX"))


def _prefix(prefix: str, source: str) -> str:
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"{source}: the metric prefix may hold letters, digits, '_', '-' and '.', got "
            f"{prefix!r}"
        )
    return prefix


class _Sink:
    """Where values go; ``send`` must not raise, wait or log more than once per outage."""

    name = "metrics"

    def __init__(self) -> None:
        self._failing = 0

    def send(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        try:
            self._send(name, value, dimensions)
        except Exception as exc:
            if not self._failing:
                logger.warning(
                    "metrics: %s failed (%s); beat goes on, and further failures are not "
                    "logged until it works again",
                    self.name,
                    exc,
                )
            self._failing += 1
        else:
            if self._failing:
                logger.info("metrics: %s works again after %d failures", self.name, self._failing)
                self._failing = 0

    def _send(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Called from the metrics thread: anything that may wait (a DNS lookup)."""

    def close(self) -> None:
        """Release what the sink holds."""


class StatsdSink(_Sink):
    """statsd lines over UDP, one datagram each, from a non-blocking socket."""

    def __init__(self, target: StatsdTarget) -> None:
        super().__init__()
        self.target = target
        self.name = f"sending to {target.describe()}"
        self._address: tuple[Any, ...] | None = None
        self._family = socket.AF_INET
        self._socket: socket.socket | None = None
        # An address needs no lookup: use it at once. A host name is looked up on the
        # metrics thread (refresh); until then, lines are dropped.
        self._resolve(socket.AI_NUMERICHOST)

    def _resolve(self, flags: int = 0) -> None:
        try:
            family, _, _, _, address = socket.getaddrinfo(
                self.target.host, self.target.port, type=socket.SOCK_DGRAM, flags=flags
            )[0]
        except OSError:
            return
        self._family, self._address = family, address

    def refresh(self) -> None:
        if self._address is None:
            try:
                self._resolve()
            except Exception as exc:
                logger.warning("metrics: cannot look up %s: %s", self.target.host, exc)

    def line(self, name: str, value: float, dimensions: Mapping[str, str]) -> str:
        metric = METRICS[name]
        number = f"{value:.3f}".rstrip("0").rstrip(".") if metric.statsd_type == "ms" else value
        if self.target.tags == "graphite":
            suffix = "".join(f".{_safe(dimensions[key])}" for key in dimensions)
            return f"{self.target.prefix}.{name}{suffix}:{number}|{metric.statsd_type}"
        tags = ",".join(f"{key}:{_safe(text)}" for key, text in dimensions.items())
        return f"{self.target.prefix}.{name}:{number}|{metric.statsd_type}|#{tags}"

    def _send(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        if self._address is None:
            raise OSError(f"{self.target.host} could not be looked up yet")
        if self._socket is None:
            # Opened on first use: a scheduler built only for beat's banner opens nothing.
            self._socket = socket.socket(self._family, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        self._socket.sendto(self.line(name, value, dimensions).encode(), self._address)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()


class EmfSink(_Sink):
    """CloudWatch Embedded Metric Format: one JSON line per value on a file descriptor
    (standard output by default: Celery replaces ``sys.stdout`` with a logger, not the
    descriptor, so the lines reach the log driver as they are)."""

    name = "writing EMF lines to standard output"

    def __init__(self, fd: int = 1) -> None:
        super().__init__()
        self.fd = fd
        self._write_lock = threading.Lock()

    def document(self, name: str, value: float, dimensions: Mapping[str, str]) -> dict[str, Any]:
        metric = METRICS[name]
        keys = [key for key in dimensions if key != "lock"]
        # Each metric by lock, and by lock and each of its own dimensions: alarms read the
        # first (e.g. the lock's leader count across environments), dashboards the others.
        sets = [["lock"], *(["lock", key] for key in keys)]
        return {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": EMF_NAMESPACE,
                        "Dimensions": sets,
                        "Metrics": [{"Name": name, "Unit": metric.unit}],
                    }
                ],
            },
            **dimensions,
            name: value,
        }

    def _send(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        line = json.dumps(self.document(name, value, dimensions), separators=(",", ":"))
        with self._write_lock:
            os.write(self.fd, line.encode() + b"\n")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text)


class BeatMetrics:
    """The metrics of one beat. Every method returns at once and never raises; with no sink
    configured each does nothing."""

    def __init__(
        self,
        *,
        lock: str,
        environment: str,
        sinks: list[_Sink],
        interval_seconds: float = GAUGE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lock = lock
        self.environment = environment
        self.sinks = sinks
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: Lease | None = None

    @classmethod
    def from_settings(
        cls,
        settings: BeatLockSettings,
        environment: str,
        environ: Mapping[str, str] | None = None,
    ) -> BeatMetrics:
        """The metrics ``settings`` (BeatLockSettings) ask for; the STATSD_* variables of
        `environ` when ``beat_lock_statsd_url`` is not set. ConfigError if they are wrong."""
        environ = os.environ if environ is None else environ
        target = settings.statsd or statsd_from_environ(environ)
        sinks: list[_Sink] = []
        if target is not None:
            sinks.append(StatsdSink(target))
        if settings.metrics_emf:
            sinks.append(EmfSink())
        interval = min(GAUGE_SECONDS, settings.timings.renew_seconds)
        return cls(
            lock=settings.name, environment=environment, sinks=sinks, interval_seconds=interval
        )

    def describe(self) -> str:
        """For beat's banner."""
        shown = [
            sink.target.describe() if isinstance(sink, StatsdSink) else "EMF lines on stdout"
            for sink in self.sinks
        ]
        return ", ".join(shown) if shown else "off (set beat_lock_statsd_url or STATSD_HOST)"

    # -- events --------------------------------------------------------------------------------

    def claimed(self, entry: str) -> None:
        self._emit("runs.claimed", 1, entry=entry)

    def sent(self, entry: str, slot: datetime) -> None:
        """A claimed run published, ``slot`` its scheduled time: counted, and its lateness."""
        if self.sinks:
            self._emit("runs.sent", 1, entry=entry)
            lateness = (self._clock() - slot).total_seconds() * 1000
            self._emit("runs.lateness", max(lateness, 0.0), entry=entry)

    def refused(self, entry: str, reason: str) -> None:
        """A claim the store refused: ``already-claimed`` or ``lease-lost``."""
        self._emit("claims.refused", 1, entry=entry, reason=reason)

    def publish_failed(self, entry: str) -> None:
        self._emit("publish.failed", 1, entry=entry)

    def in_doubt(self, entry: str) -> None:
        """A slot claimed that may or may not have gone out (its claim's answer or its publish
        was lost)."""
        self._emit("runs.in_doubt", 1, entry=entry)

    def renewal(self, seconds: float, renewed: bool) -> None:
        """A renewal answered in ``seconds``: its latency if it renewed, else a refusal."""
        if renewed:
            self._emit("renewal.latency", seconds * 1000)
        else:
            self._emit("renewal.failed", 1, reason="refused")

    def renewal_unanswered(self) -> None:
        self._emit("renewal.failed", 1, reason="unanswered")

    def _emit(self, name: str, value: float, **dimensions: str) -> None:
        if not self.sinks:
            return
        tags = {"lock": self.lock, "environment": self.environment, **dimensions}
        value = round(value, 3)  # milliseconds to the microsecond
        for sink in self.sinks:
            sink.send(name, value, tags)

    # -- the gauges' thread --------------------------------------------------------------------

    def timed(self, store: LeaseStore) -> LeaseStore:
        """`store` with its renewals timed into these metrics (itself when nothing is sent)."""
        return cast("LeaseStore", _TimedRenewals(store, self)) if self.sinks else store

    def start(self, lease: Lease) -> None:
        """Send the leader and standbys gauges every ``interval_seconds`` from a daemon thread,
        which also looks up the statsd host."""
        if not self.sinks or self._thread is not None:
            return
        self._lease = lease
        self._thread = threading.Thread(
            target=self._run, name=f"beat-lock-metrics:{self.lock}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the gauges, say this beat no longer leads, release the sinks."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(5.0)
        self._thread = None
        self._emit("leader", 0)
        for sink in self.sinks:
            sink.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._gauges()
            except Exception:
                logger.exception("metrics: the gauges failed; trying again")
            self._stopping.wait(self.interval_seconds)

    def _gauges(self) -> None:
        for sink in self.sinks:
            sink.refresh()
        lease = self._lease
        assert lease is not None
        leading = lease.valid()
        self._emit("leader", 1 if leading else 0)
        if not leading:
            return
        counts: dict[str, int] = {}
        try:
            participants = lease.store.participants(lease.name)
        except Exception as exc:
            logger.debug("metrics: cannot read the participants: %s", exc)
            return
        for participant in participants:
            environment = participant.identity.environment
            counts.setdefault(environment, 0)
            if participant.role == "standby":
                counts[environment] += 1
        counts.setdefault(self.environment, 0)
        for environment, count in sorted(counts.items()):
            for sink in self.sinks:
                sink.send("standbys", count, {"lock": self.lock, "environment": environment})


class _TimedRenewals:
    """A lease store whose ``renew`` is timed into the metrics; everything else passes
    through. The lease keeps its store as it is: only what it is given is wrapped."""

    def __init__(self, store: LeaseStore, metrics: BeatMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def renew(self, *args: Any, **kwargs: Any) -> bool:
        started = time.monotonic()
        try:
            renewed = self._store.renew(*args, **kwargs)
        except StoreUnavailable:
            self._metrics.renewal_unanswered()
            raise
        self._metrics.renewal(time.monotonic() - started, renewed)
        return renewed
