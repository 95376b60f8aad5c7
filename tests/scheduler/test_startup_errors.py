"""``celery beat -S leased`` with a bad setting exits at once: one line, status 78, no traceback;
also an unknown beat_lock_* key or BEAT_LOCK_* variable, and a password in app.conf's lock URL."""

from __future__ import annotations

import json
import os

import pytest

from tests.harness import Processes

pytestmark = [pytest.mark.integration]

CASES = {
    "no environment": (
        {"BEAT_LOCK_ENVIRONMENT": None},
        "Error: leased beat scheduler: beat_lock_environment is not set: every beat must say "
        "which environment it runs in",
    ),
    "unknown backend": (
        {"BEAT_LOCK_URL": "zookeeper://zk:2181/beat"},
        "Error: leased beat scheduler: environment variable BEAT_LOCK_URL "
        "'zookeeper://zk:2181/beat' has unknown scheme 'zookeeper'",
    ),
    "lease shorter than renew": (
        {"BEAT_LOCK_LEASE_SECONDS": "1", "BEAT_LOCK_RENEW_SECONDS": "3"},
        "Error: leased beat scheduler: beat_lock_* durations: lease_seconds (1.0) must be "
        "greater than safe_seconds (1.5)",
    ),
    "missing table": (
        {"BEAT_LOCK_URL": "dynamodb://no-such-table?region=eu-west-2"},
        "Error: leased beat scheduler: DynamoDB table 'no-such-table' does not exist",
    ),
    "misspelt variable": (
        {"BEAT_LOCK_LEASE_SECOND": "10"},
        "Error: leased beat scheduler: environment variable BEAT_LOCK_LEASE_SECOND is not a "
        "beat_lock setting, so it would be ignored; did you mean BEAT_LOCK_LEASE_SECONDS?",
    ),
}
APP_CONF_CASES = {
    "misspelt key": (
        {"beat_lock_critcal": ["every-second-critical"]},
        "Error: leased beat scheduler: app.conf.beat_lock_critcal is not a beat_lock setting, so "
        "it would be ignored; did you mean beat_lock_critical?",
    ),
    "password in the URL": (
        {"beat_lock_url": "redis://:s3cret@127.0.0.1:6379/0"},
        "Error: leased beat scheduler: app.conf.beat_lock_url carries a password, which "
        "`celery inspect conf`, flower and the worker banner show in clear",
    ),
}


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_bad_config_stops_beat_with_one_clear_line(processes: Processes, moto_server, tmp_path):
    beats = {
        case: (processes.beat("paas", name=case.replace(" ", "-"), **env), expected)
        for case, (env, expected) in CASES.items()
    }
    with Processes(tmp_path, "tests.scheduler.conf_app", processes.env) as own:
        for case, (conf, expected) in APP_CONF_CASES.items():
            beat = own.beat("paas", name=case.replace(" ", "-"), TEST_APP_CONF=json.dumps(conf))
            beats[case] = (beat, expected)
        for case, (beat, expected) in beats.items():
            status = beat.wait_exit(60)
            output = beat.log()
            errors = [line for line in output.splitlines() if line.startswith("Error:")]
            assert status == os.EX_CONFIG, f"{case}: status {status}\n{output}"
            assert len(errors) == 1 and errors[0].startswith(expected), f"{case}:\n{output}"
            assert "Traceback" not in output, f"{case}:\n{output}"
            assert "s3cret" not in output, f"{case}:\n{output}"
