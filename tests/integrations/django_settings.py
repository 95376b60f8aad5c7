"""Django settings of the django-celery-beat tests: SQLite at ``TEST_DJANGO_DB``, time zones on."""

import os

SECRET_KEY = "tests-only"
INSTALLED_APPS = ["django_celery_beat"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TEST_DJANGO_DB"],
        # beat, the worker and the test write the one file; wait for its lock, as a server would
        "OPTIONS": {"timeout": 30},
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
