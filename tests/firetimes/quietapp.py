"""A realistic Celery app for the quiet-window tests and the README example: 31 beat entries in
Europe/London (every-minute checks, quarter-hourly jobs, nightly billing at 02:00, letters at 17:30
on weekdays, interval entries). Critical: billing-nightly and letters-*.

``handover -A quietapp quiet-windows`` loads it from this directory."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.schedules import crontab, schedule

app = Celery("quietapp", set_as_current=False)
app.conf.timezone = "Europe/London"
app.conf.beat_lock_critical = ["billing-nightly", "letters-*"]

EVERY_MINUTE = ("health-db", "health-redis", "health-queue", "metrics-push", "inbox-poll")
SCHEDULES = {
    **{name: crontab() for name in EVERY_MINUTE},
    "sync-crm": crontab(minute="*/15"),
    "sync-payments": crontab(minute="*/15"),
    "retry-webhooks": crontab(minute="*/15"),
    "refresh-search": crontab(minute="5,20,35,50"),
    "expire-sessions": crontab(minute="10,25,40,55"),
    "reindex-documents": crontab(minute="7,22,37,52"),
    "report-hourly": crontab(minute=0),
    "cleanup-tmp": crontab(minute=15),
    "cache-warm": crontab(minute=30),
    "digest-hourly": crontab(minute=45),
    "chase-reminders": crontab(minute=0, hour="9-17", day_of_week="mon-fri"),
    "sla-check": crontab(minute="*/30", hour="8-18", day_of_week="mon-fri"),
    "stats-daily": crontab(minute=5, hour=0),
    "billing-nightly": crontab(minute=0, hour=2),
    "backup-nightly": crontab(minute=30, hour=3),
    "purge-audit": crontab(minute=0, hour=4),
    "report-daily": crontab(minute=0, hour=7),
    "letters-weekday": crontab(minute=30, hour=17, day_of_week="mon-fri"),
    "cleanup-weekly": crontab(minute=0, hour=5, day_of_week="sun"),
    "report-weekly": crontab(minute=0, hour=8, day_of_week="mon"),
    "invoices-monthly": crontab(minute=0, hour=6, day_of_month=1),
    "heartbeat": timedelta(seconds=30),
    "queue-depth": schedule(run_every=60),
    "cache-stats": 300.0,
    "token-refresh": timedelta(minutes=45),
    "reconcile-ledger": timedelta(hours=6),
}
app.conf.beat_schedule = {
    name: {"task": f"quietapp.{name.replace('-', '_')}", "schedule": entry}
    for name, entry in SCHEDULES.items()
}
