"""A lease holder in a process of its own, for the test that freezes it with SIGSTOP.

    python -m tests.lease.holder_process URL NAME ENVIRONMENT LEASE RENEW SAFE POLL

It leads (a LeaseKeeper renews in the background), fences ``letters`` as a leader does, then
claims one slot of it every 50 ms, printing one JSON line per event. After a gap longer than the
lease (it was frozen) it also sends a claim straight to the store with the token it held,
bypassing ``valid()``, to show that the store itself refuses a stale holder.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from beat_handover.beat_lock.errors import StoreUnavailable
from beat_handover.beat_lock.identity import Identity
from beat_handover.beat_lock.layout import new_version
from beat_handover.beat_lock.lease import Lease, LeaseKeeper
from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.stores import open_store
from beat_handover.beat_lock.timings import LeaseTimings

ENTRY = "letters"
FIRST_SLOT = datetime(2026, 6, 1, tzinfo=UTC)


def slot(k: int) -> datetime:
    return FIRST_SLOT + timedelta(seconds=k)


_output = threading.Lock()


def emit(*event: object) -> None:
    """One JSON line; the keeper's thread emits too, so whole lines only."""
    with _output:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main(argv: list[str]) -> None:
    url, name, environment = argv[:3]
    lease_s, renew_s, safe_s, poll_s = map(float, argv[3:7])
    timings = LeaseTimings(lease_s, renew_s, safe_s, poll_s)
    store = open_store(parse_lock_url(url), timings)
    lease = Lease(
        store,
        name,
        Identity.new(environment),
        timings,
        on_stop_leading=lambda reason: emit("stopped", reason),
    )
    LeaseKeeper(lease).start()
    while lease.token is None:
        time.sleep(0.02)
    token = lease.token
    while lease.fence([ENTRY], everything=True) is None:
        time.sleep(0.02)
    emit("leading", token)
    last = time.monotonic()
    for k in range(1_000_000):
        now = time.monotonic()
        if now - last > timings.lease_seconds:
            emit("resumed", round(now - last, 2))
            fenced = store.claim(
                name, ENTRY, slot(k), identity=lease.identity, token=token, claim_id=new_version()
            )
            emit("fenced", fenced.outcome.value, fenced.reason)
        last = now
        try:
            emit("claim", k, lease.claim(ENTRY, slot(k)).outcome.value)
        except StoreUnavailable:
            emit("claim", k, "unavailable")
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1:])
