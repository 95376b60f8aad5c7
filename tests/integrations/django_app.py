"""A Django project's Celery app whose schedule lives in django-celery-beat's tables (SQLite at
``TEST_DJANGO_DB``), as the five-minute django-celery-beat setup in docs/schedule-sources.md has
it. The worker appends each run, with the beat-handover headers, to ``TEST_RECORD_PATH``."""

from __future__ import annotations

import os

import django
from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django_settings")
django.setup()

from beat_handover.handover.testing.received_runs import append_record  # noqa: E402

app = Celery("django_beat_test", broker=os.environ.get("TEST_BROKER_URL", "memory://"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="Europe/London",
    beat_sync_every=1,  # write last_run_at/total_run_count after every run (stock: 3 minutes)
    beat_max_loop_interval=1,
    result_expires=None,
)


@app.task(bind=True)
def record(self: Task) -> None:
    """Record this run and its headers."""
    append_record(os.environ["TEST_RECORD_PATH"], self.name, self.request.id, self.request.headers)
