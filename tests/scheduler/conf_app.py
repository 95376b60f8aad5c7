"""The app of :mod:`tests.scheduler.app` with more ``app.conf`` keys, from the JSON object in
``TEST_APP_CONF``: settings as an app's own configuration holds them, not the environment."""

from __future__ import annotations

import json
import os

from tests.scheduler.app import app

app.conf.update(json.loads(os.environ.get("TEST_APP_CONF", "{}")))
