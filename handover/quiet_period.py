"""The period a quiet-window report covers, from what the operator typed: a local day
(``--date``), a start and an end or a number of days (``--from``, ``--to``, ``--days``), or the
next day. Times without an offset are the app's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from beat_handover.beat_lock.errors import ConfigError

MAX_PERIOD = timedelta(days=366)
ISO_EXAMPLES = "2026-03-29T01:00, 2026-03-29T01:00+01:00 or 2026-03-29T00:00Z"


def resolve_period(
    tz: tzinfo,
    now: datetime,
    *,
    start_text: str | None,
    end_text: str | None,
    date_text: str | None,
    days: int | None,
) -> tuple[datetime, datetime]:
    """The period the options name: --date D (that local day), --from A [--to B | --days N],
    or --days N from now (default: the next day)."""
    if date_text is not None:
        if start_text is not None or end_text is not None or days is not None:
            raise ConfigError(
                "--date names a whole day; do not combine it with --from, --to or --days"
            )
        try:
            day = date.fromisoformat(date_text.strip())
        except ValueError:
            raise ConfigError(f"--date {date_text!r} is not a date such as 2026-03-29") from None
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        after = day + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz)
    else:
        if end_text is not None and start_text is None:
            raise ConfigError("--to needs --from (or use --date or --days)")
        if end_text is not None and days is not None:
            raise ConfigError("give either --to or --days with --from, not both")
        start = now if start_text is None else _parse_time(start_text, "--from", tz)
        if end_text is not None:
            end = _parse_time(end_text, "--to", tz)
        else:
            end = start + timedelta(days=1 if days is None else days)
    # As instants: Python compares datetimes sharing a tzinfo by their wall clocks.
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    if end_utc <= start_utc:
        raise ConfigError(
            f"the period ends ({end.isoformat()}) before or when it starts "
            f"({start.isoformat()}); give a --to later than --from"
        )
    if end_utc - start_utc > MAX_PERIOD:
        raise ConfigError(
            f"the period is {end_utc - start_utc} long; ask about at most 366 days at once"
        )
    return start_utc, end_utc


def _parse_time(text: str, option: str, tz: tzinfo) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time such as {ISO_EXAMPLES}"
        ) from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value
