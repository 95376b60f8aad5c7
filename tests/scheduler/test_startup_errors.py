"""``celery beat -S leased`` with a bad setting exits at once: one line, status 78, no traceback."""

from __future__ import annotations

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
}


@pytest.mark.parametrize("lock", ["redis"], indirect=True)
def test_bad_config_stops_beat_with_one_clear_line(processes: Processes, moto_server):
    beats = {
        case: processes.beat("paas", name=case.replace(" ", "-"), **env)
        for case, (env, _) in CASES.items()
    }
    for case, beat in beats.items():
        status = beat.wait_exit(60)
        output = beat.log()
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert status == os.EX_CONFIG, f"{case}: status {status}\n{output}"
        assert len(errors) == 1 and errors[0].startswith(CASES[case][1]), f"{case}:\n{output}"
        assert "Traceback" not in output, f"{case}:\n{output}"
