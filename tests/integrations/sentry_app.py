"""A Celery app with Sentry's Celery integration watching beat (``monitor_beat_tasks=True``), as a
team using Sentry Crons runs it: sentry-sdk is set up when the module is imported, in beat and in
the worker alike, reporting to ``SENTRY_DSN`` (a local recorder in the tests). One every-minute
crontab entry (Sentry Crons ignores intervals under a minute); the worker appends each run's
check-in id and slot headers to ``TEST_RECORD_PATH``."""

from __future__ import annotations

import json
import os

import sentry_sdk
from celery import Celery, Task
from celery.schedules import crontab
from sentry_sdk.integrations.celery import CeleryIntegration

sentry_sdk.init(
    dsn=os.environ["SENTRY_DSN"],
    integrations=[CeleryIntegration(monitor_beat_tasks=True)],
    default_integrations=False,
)

app = Celery("sentry_crons_test", broker=os.environ.get("TEST_BROKER_URL", "memory://"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "letters-minutely": {
            "task": "tests.integrations.sentry_app.record",
            "schedule": crontab(minute="*"),
        },
    },
)


@app.task(bind=True)
def record(self: Task) -> None:
    """Record the Sentry and beat-handover headers this run arrived with."""
    headers = self.request.headers or {}
    keep = ("sentry-monitor-slug", "sentry-monitor-check-in-id", "beat_slot", "beat_lock_token")
    line = {key: headers.get(key) for key in keep}
    with open(os.environ["TEST_RECORD_PATH"], "a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")
