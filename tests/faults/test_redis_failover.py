"""A Redis lock store with a replica, failed over by ``REPLICAOF NO ONE`` after the replica
missed the last acknowledged writes (its link to the primary cut by a proxy): what the Redis
backend guarantees across it, without and with ``beat_lock_redis_wait_replicas``.

Redis replicates asynchronously: a claim the primary acknowledged may be missing on the replica
that a failover promotes. A new leader then reads an older last claim and sends that slot again.
With ``beat_lock_redis_wait_replicas=1`` each lease write and claim is confirmed by ``WAIT``
before beat acts on it: a claim the replica has not got counts as unanswered, is not published,
and the slot goes out once, from whichever side holds it after the failover.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.faults.redis_pair import SLOT, claims_across_failover, redis_pair

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("wait_replicas", [0, 1])
def test_a_failover_losing_acknowledged_claims_sends_a_slot_twice_unless_claims_wait(
    tmp_path, wait_replicas: int, unique_name: str
):
    with redis_pair(tmp_path) as pair:
        published = claims_across_failover(pair, unique_name, wait_replicas)
    second = SLOT + timedelta(minutes=1)
    if wait_replicas == 0:
        # The promoted replica never had paas's second claim: ecs sends that slot again.
        assert published == [("paas", SLOT), ("paas", second), ("ecs", second)]
    else:
        # paas's second claim was not replicated in time: unanswered, never published.
        assert published == [("paas", SLOT), ("ecs", second)]
