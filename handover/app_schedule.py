"""What the quiet-window report and the handover's guard read from an app: the schedule of the
scheduler in use (:func:`beat_handover.scheduler.schedule_source.read_schedule`, which may read a
database), its time zone and critical entries, and the interval anchors (last claimed slots)
from the lease store (:func:`load_app_schedule`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from beat_handover.beat_lock.errors import ConfigError, StoreMissing, StoreUnavailable
from beat_handover.handover.connection import Connection
from beat_handover.scheduler import quiet
from beat_handover.scheduler.quiet import CriticalRun, QuietNow
from beat_handover.scheduler.schedule_source import read_schedule
from beat_handover.scheduler.startup_checks import app_timezone as beat_timezone


@dataclass(frozen=True)
class AppSchedule:
    """What the quiet-window maths needs from an app: its entries, time zone, critical entries
    (``beat_lock_critical``) and the interval anchors read from the lease store."""

    schedules: Mapping[str, Any]  # entry name -> schedule
    tz: tzinfo
    critical: tuple[str, ...]
    anchors: Mapping[str, datetime]  # entry name -> last claimed slot
    anchors_unknown: str | None  # why no claims could be read; None when the store answered

    @property
    def phase_unknown_reason(self) -> str:
        """Why an interval entry without an anchor has one: no store, or no claim yet."""
        if self.anchors_unknown is not None:
            return self.anchors_unknown
        return "the lease store has no claimed slot for them yet"

    def next_critical_run(
        self, now: datetime, critical: Sequence[str] | None = None
    ) -> CriticalRun | None:
        """The first critical run after `now` (`critical` defaults to beat_lock_critical)."""
        chosen = self.critical if critical is None else critical
        return quiet.next_critical_run(
            self.schedules, chosen, now, tz=self.tz, anchors=self.anchors
        )

    def quiet_at(self, now: datetime, *, guard: timedelta, min_length: timedelta) -> QuietNow:
        """Whether a window of `min_length` starts at `now`, by the report's rule (see
        beat_handover.scheduler.quiet.quiet_at), for beat_lock_critical."""
        return quiet.quiet_at(
            self.schedules,
            self.critical,
            now,
            tz=self.tz,
            guard=guard,
            min_length=min_length,
            anchors=self.anchors,
        )


def load_app_schedule(connection: Connection) -> AppSchedule:
    """Read the beat schedule, time zone and critical entries of the connection's app, and the
    claimed slots from the lease store when ``beat_lock_url`` is set and the store answers."""
    settings = connection.settings()
    app = connection.load_app()
    if app is None:
        raise ConfigError(
            "no Celery app given: name it with -A, e.g. handover -A proj quiet-windows"
        )
    # The scheduler in use's entries (a schedule database included) and critical names resolved
    # against them, exactly as beat resolves them.
    schedule = read_schedule(app)
    schedules = schedule.schedules
    if settings.location is None:
        anchors: dict[str, datetime] = {}
        unknown: str | None = "beat_lock_url is not set, so no claimed slots could be read"
    else:
        try:
            claims = connection.store().last_claims(settings.name)
        except (StoreUnavailable, StoreMissing) as exc:
            anchors, unknown = {}, f"the lease store could not be read: {exc}"
        else:
            anchors = {entry: claim.slot for entry, claim in claims.items()}
            unknown = None
    critical = tuple(sorted(schedule.names.critical))
    return AppSchedule(schedules, app_timezone(app), critical, anchors, unknown)


def app_timezone(app: Any) -> tzinfo:
    """The zone beat computes crontabs in, as beat reads it
    (:func:`beat_handover.scheduler.startup_checks.app_timezone`); refused when that would be the
    host's local zone, which this machine cannot know for the host beat runs on."""
    if app.conf.timezone is None and app.conf.enable_utc is False:
        raise ConfigError(
            "app.conf.timezone is not set and enable_utc is off, so beat uses this "
            "machine's local time; set app.conf.timezone (e.g. Europe/London) so the report "
            "computes in the zone beat uses"
        )
    return beat_timezone(app)
