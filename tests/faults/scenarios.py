"""Faults with real beats, shared by the fault tests and ``bench/bench_faults.py``.

A :class:`FaultSession` runs a worker and two leased beats (paas and ecs) of
:mod:`tests.faults.app`, each beat talking to the lock store and to the broker through its own
:class:`~tests.faults.proxy.FaultProxy`, the worker directly. A fault is applied to whichever
beat leads at that moment; afterwards :meth:`FaultSession.outcome` stops the beats and counts,
from what the worker executed and what the store reports: slots executed twice, slots lost,
slots in doubt (reported for an operator), slots sent again, and how late the latest run was.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beat_handover.beat_lock.location import parse_lock_url
from beat_handover.beat_lock.record import Doubt
from beat_handover.beat_lock.stores import open_store
from tests.faults.app import ENTRIES
from tests.faults.proxy import Fault, FaultProxy
from tests.harness import Proc, Processes, read_records, settled, utc, wait_for

APP = "tests.faults.app"
# Short leases, as in every process test: a takeover within about 2.5 s, inside the on-time
# grace (5 s), so a takeover alone loses nothing and only slots in doubt can go missing.
TIMINGS = {
    "BEAT_LOCK_LEASE_SECONDS": "2",
    "BEAT_LOCK_RENEW_SECONDS": "0.4",
    "BEAT_LOCK_SAFE_SECONDS": "1.5",
    "BEAT_LOCK_POLL_SECONDS": "0.2",
}
STARTUP_SECONDS = 60
LEADING = "dispatching lock="
RESENT = re.compile(r"entry=(\S+) slot=(\S+) in doubt \((.*)\): safe to repeat, sending it again")
ENDED = "whose tenure ended without acknowledging its publish"  # judged by the next leader


@dataclass
class Outcome:
    """What one or more faults did to the runs: per entry, as the worker executed them."""

    fault: str
    backend: str
    executed: dict[str, Counter[datetime]]
    lost: dict[str, list[datetime]]
    reported: list[Doubt]
    resent: int  # slots in doubt sent again (each counted once, however many attempts)
    judged: list[tuple[str, datetime]]  # earlier tenures' claims a new leader found in doubt
    worst_late_seconds: float
    tenures: int  # distinct tokens that sent what the worker executed
    after_newer: int  # runs executed after a run of a newer tenure (a former leader's, late)

    def doubled(self, entry: str) -> list[datetime]:
        return sorted(slot for slot, n in self.executed[entry].items() if n > 1)

    def reported_slots(self, entry: str) -> set[datetime]:
        return {d.slot for d in self.reported if d.entry == entry}

    def unreported_lost(self, entry: str) -> list[datetime]:
        return [slot for slot in self.lost[entry] if slot not in self.reported_slots(entry)]

    def line(self) -> str:
        """``doubled=g/r/u lost=g/r/u in-doubt=N resent=N worst-late=Ns`` (guarded,
        repeat-safe, unguarded)."""

        def per_entry(counts: list[int]) -> str:
            return "/".join(str(n) for n in counts)

        return (
            f"{self.fault:<24} {self.backend:<8} "
            f"doubled={per_entry([len(self.doubled(e)) for e in ENTRIES])} "
            f"lost={per_entry([len(self.lost[e]) for e in ENTRIES])} "
            f"judged-in-doubt={len(self.judged)} reported={len(self.reported)} "
            f"resent={self.resent} "
            f"worst-late={self.worst_late_seconds:.1f}s tenures={self.tenures} "
            f"late-from-former={self.after_newer}"
        )


class FaultSession:
    """A worker and two beats, each beat behind its own store proxy and broker proxy."""

    def __init__(
        self,
        directory: Path,
        *,
        backend: str,
        lock_url: str,
        name: str,
        store_port: int,
        broker_port: int,
    ) -> None:
        self.backend = backend
        self.name = name
        self.lock_url = lock_url
        self.broker_url = f"redis://127.0.0.1:{broker_port}/1"
        self.processes = Processes(
            directory,
            APP,
            {
                "TEST_BROKER_URL": self.broker_url,
                "BEAT_LOCK_URL": lock_url,
                "BEAT_LOCK_NAME": name,
                **TIMINGS,
            },
        )
        self.store_proxies = {env: FaultProxy(store_port) for env in ("paas", "ecs")}
        self.broker_proxies = {env: FaultProxy(broker_port) for env in ("paas", "ecs")}
        self.beats: dict[str, Proc] = {}
        self.worker: Proc | None = None
        self.store = open_store(parse_lock_url(lock_url))

    def __enter__(self) -> FaultSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.processes.close()
        for proxy in (*self.store_proxies.values(), *self.broker_proxies.values()):
            proxy.close()
        self.store.close()

    def _beat_env(self, environment: str) -> dict[str, str]:
        store_port = self.store_proxies[environment].port
        env = {"TEST_BROKER_URL": f"redis://127.0.0.1:{self.broker_proxies[environment].port}/1"}
        if self.backend == "redis":
            env["BEAT_LOCK_URL"] = f"redis://127.0.0.1:{store_port}/0"
        else:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{store_port}"
        return env

    def start(self) -> None:
        """The worker, paas leading and ecs standing by, every entry running."""
        self.worker = self.processes.worker()
        self.beats["paas"] = self.processes.beat("paas", **self._beat_env("paas"))
        wait_for(
            lambda: self.beats["paas"].logged(LEADING),
            STARTUP_SECONDS,
            "paas to lead",
            *self.shown(),
        )
        self.beats["ecs"] = self.processes.beat("ecs", **self._beat_env("ecs"))
        wait_for(
            lambda: self.beats["ecs"].logged("lease standby"),
            STARTUP_SECONDS,
            "ecs to stand by",
            *self.shown(),
        )
        self.running(2)

    def shown(self) -> list[Proc]:
        return [proc for proc in (self.worker, *self.beats.values()) if proc is not None]

    def leader(self) -> str:
        """The environment holding the lease now (waits while nobody does)."""

        def holder() -> str | None:
            record = self.store.read(self.name)
            return record.holder.environment if record and record.holder else None

        return wait_for(holder, STARTUP_SECONDS, "a leader", *self.shown())

    def running(self, seconds: float) -> None:
        """Until every entry has been executed for a slot ``seconds`` from now: runs go out
        on time again."""
        until = utc(time.time() + seconds)

        def done() -> bool:
            latest: dict[str, datetime] = {}
            for record in read_records(self.processes.record_path):
                if record.entry is not None:
                    latest[record.entry] = max(latest.get(record.entry, record.slot), record.slot)
            never = datetime.min.replace(tzinfo=UTC)
            return all(latest.get(entry, never) >= until for entry in ENTRIES)

        wait_for(done, STARTUP_SECONDS + seconds, f"runs up to {until:%H:%M:%S}", *self.shown())

    def store_fault(self, fault: Fault, seconds: float, **how: float) -> str:
        """Apply ``fault`` between the leader and the store for ``seconds``; returns the
        environment that led."""
        return self._fault(self.store_proxies, fault, seconds, how)

    def broker_fault(self, fault: Fault, seconds: float, **how: float) -> str:
        """The same between the leader and the broker."""
        return self._fault(self.broker_proxies, fault, seconds, how)

    def _fault(
        self, proxies: dict[str, FaultProxy], fault: Fault, seconds: float, how: dict[str, float]
    ) -> str:
        environment = self.leader()
        proxies[environment].set(fault, **how)
        time.sleep(seconds)
        proxies[environment].set(Fault.PASS)
        return environment

    def pause_leader(self, seconds: float) -> str:
        """Stop the leader (SIGSTOP) in the middle of a publish: its broker link is cut first,
        so the publish of the next run it claims hangs with the message on its way; then, after
        ``seconds``, resume it and heal the link, so that message reaches the broker late."""
        environment = self.leader()
        link = self.broker_proxies[environment]
        link.set(Fault.PARTITION)
        time.sleep(1.2)  # a whole second: the next run is claimed and its publish under way
        self.beats[environment].pause()
        time.sleep(seconds)
        self.beats[environment].resume()
        link.set(Fault.PASS)
        return environment

    def outcome(self, fault: str, since: float) -> Outcome:
        """Stop the beats, let the worker finish, and count."""
        records = settled(self.processes, *self.beats.values())
        executed: dict[str, Counter[datetime]] = {entry: Counter() for entry in ENTRIES}
        for record in records:
            if record.entry in executed:
                executed[record.entry][record.slot] += 1
        lost = {}
        for entry, counts in executed.items():
            slots = sorted(counts)
            expected, slot = [], slots[0] if slots else None
            while slot is not None and slot <= slots[-1]:
                expected.append(slot)
                slot += timedelta(seconds=1)
            lost[entry] = [slot for slot in expected if slot not in counts]
        late = [
            record.received_at - record.slot.timestamp()
            for record in records
            if record.slot is not None and record.slot.timestamp() >= since
        ]
        resends = {m.groups() for beat in self.beats.values() for m in RESENT.finditer(beat.log())}
        reported = self.store.doubts(self.name)
        judged = {(e, datetime.fromisoformat(slot)) for e, slot, why in resends if ENDED in why}
        judged |= {(d.entry, d.slot) for d in reported if ENDED in d.reason}
        newest, after_newer = 0, 0
        for record in sorted(records, key=lambda r: r.received_at):
            if record.token is not None:
                after_newer += record.token < newest
                newest = max(newest, record.token)
        return Outcome(
            fault=fault,
            backend=self.backend,
            executed=executed,
            lost=lost,
            reported=reported,
            resent=len({(entry, slot) for entry, slot, _ in resends}),
            judged=sorted(judged),
            worst_late_seconds=max(late, default=0.0),
            tenures=len({record.token for record in records if record.token is not None}),
            after_newer=after_newer,
        )
