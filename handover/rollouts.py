"""Step-by-step rollouts of a route: raise the percentage to each step in turn, hold each step for
a bake time while CloudWatch alarms stay quiet, and set the route back to 0 % the moment one
fires. The library behind ``handover route rollout`` (docs/rollouts.md).

The rollout's state is in the route item itself (:class:`~beat_handover.routers.route_format.
Rollout`), written with the percentage in one conditional write and recorded in the route's
history, so ``handover status`` shows it from anywhere, a second operator cannot start a rival
rollout, and an interrupted one resumes where it stopped. While the rollout runs it re-reads the
route at every look at the alarms: a change by anyone else (``route abort``, a ``route set``)
stops it at once, and it never writes over that change.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from beat_handover.beat_lock.errors import ConfigError, StoreUnavailable, WriteConflict
from beat_handover.handover.alarms import Alarms, AlarmState
from beat_handover.handover.procedure.audit import operator
from beat_handover.handover.routes import Routes, rollout_summary, route_errors, stale_at
from beat_handover.routers.errors import RouterConfigError
from beat_handover.routers.route_format import Rollout, Route, format_percent, iso_utc, parse_steps
from beat_handover.scheduler.durations import format_duration

# One step may raise the share by at most this many points without --yes: 50 -> 100 passes,
# 25 -> 100 (or 0 -> 100) asks.
JUMP_NEEDS_YES = Decimal(50)
ALARM_POLL_SECONDS = 10.0
PROGRESS_TICK_SECONDS = 1.0
# Failed looks at the alarms in a row after which a rollout stops (not knowing is no reason to
# roll back, but it is no reason to go on either).
UNREADABLE_LOOKS = 3
ABORT_ATTEMPTS = 3


class Outcome(enum.Enum):
    DONE = "done"
    ABORTED = "aborted"  # an alarm fired: the route is back at 0 %
    STOPPED = "stopped"  # Ctrl-C: the route stays at its step, the rollout can be resumed
    HALTED = "halted"  # someone else changed the route, or the alarms could not be read


@dataclass(frozen=True)
class Plan:
    """What a rollout does: its steps, how long each bakes, the alarms it aborts on."""

    steps: tuple[Decimal, ...]
    bake_seconds: int
    alarms: tuple[str, ...]
    insufficient_data_aborts: bool = True

    @classmethod
    def of(cls, rollout: Rollout) -> Plan:
        return cls(
            rollout.steps, rollout.bake_seconds, rollout.alarms, rollout.insufficient_data_aborts
        )

    def describe(self) -> str:
        """``steps 1,5,25,50,100%, bake 30m, abort on alarm web-5xx (and INSUFFICIENT_DATA)``."""
        alarms = ", ".join(self.alarms) or "none"
        extra = " (and INSUFFICIENT_DATA)" if self.alarms and self.insufficient_data_aborts else ""
        return (
            f"steps {steps_text(self.steps)}%, bake {format_duration(self.bake_seconds)}, "
            f"abort on alarm {alarms}{extra}"
        )


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    route: Route
    message: str


class RolloutProgress(Protocol):
    """Where a rollout reports (:class:`beat_handover.handover.cli.console.Console`)."""

    def line(self, text: str = "") -> None: ...

    def loud(self, text: str) -> None: ...

    def progress(self, label: str, elapsed_seconds: float) -> None: ...

    def end_wait(self) -> None: ...


def steps_text(steps: tuple[Decimal, ...]) -> str:
    return ",".join(format_percent(step) for step in steps)


def parse_steps_option(text: str, *, source: str = "--steps") -> tuple[Decimal, ...]:
    """``1,5,25,50,100`` as percentages: rising, above 0, at most 100, exact to 0.0001 %."""
    values = [part.strip() for part in text.split(",")]
    with route_errors():
        return parse_steps(values, source=source, error=RouterConfigError)


def big_jumps(start: Decimal, steps: tuple[Decimal, ...]) -> list[tuple[Decimal, Decimal]]:
    """The steps (from, to) that raise the share by more than JUMP_NEEDS_YES points."""
    return [
        (before, after)
        for before, after in zip((start, *steps), steps, strict=False)
        if after - before > JUMP_NEEDS_YES
    ]


class RolloutRun:
    """One run of ``handover route rollout`` on one route."""

    def __init__(
        self,
        routes: Routes,
        name: str,
        *,
        alarms_for: Callable[[Plan], Alarms],
        progress: RolloutProgress,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = ALARM_POLL_SECONDS,
    ) -> None:
        self.routes = routes
        self.name = name
        self.alarms_for = alarms_for
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self.poll_seconds = poll_seconds

    def run(self, plan: Plan | None, *, yes: bool = False, take_over: bool = False) -> Result:
        """Start (``plan``) or resume (the stored plan) the rollout and run it to its end."""
        route = self.routes.get(self.name)
        plan = self._plan(route, plan, yes=yes, take_over=take_over)
        alarms = self.alarms_for(plan)
        alarms.states()  # names that do not exist are refused before anything is written
        route = self._take(route, plan)
        try:
            return self._steps(route, plan, alarms)
        except KeyboardInterrupt:
            return self._stop(self.routes.get(self.name))

    def _plan(self, route: Route, plan: Plan | None, *, yes: bool, take_over: bool) -> Plan:
        current = route.rollout
        if current is None:
            if plan is None:
                raise ConfigError(
                    f"route {route.name!r} has no rollout to resume; start one with --steps "
                    "(e.g. --steps 1,5,25,50,100 --bake 30m)"
                )
            if plan.steps[0] <= route.percent:
                raise ConfigError(
                    f"route {route.name!r} is at {format_percent(route.percent)}% already; the "
                    f"steps must all be above it (got {steps_text(plan.steps)})"
                )
            jumps = big_jumps(route.percent, plan.steps)
            if jumps and not yes:
                listed = ", ".join(
                    f"{format_percent(a)}% -> {format_percent(b)}%" for a, b in jumps
                )
                raise ConfigError(
                    f"the rollout would raise route {route.name!r} by more than "
                    f"{format_percent(JUMP_NEEDS_YES)} points in one step ({listed}); add "
                    "steps in between, or confirm with --yes"
                )
            return plan
        stored = Plan.of(current)
        if plan is not None and plan != stored:
            raise ConfigError(
                f"route {route.name!r} has a rollout under way ({stored.describe()}); run "
                f"`handover route rollout {route.name}` without --steps to resume it, or end it "
                f"with `handover route abort {route.name}`"
            )
        if current.state == "running":
            now = datetime.now(UTC)
            gone = now > stale_at(current)
            if not take_over or not gone:
                silent = (
                    f"it has been silent since {current.since}, so if its process is gone, "
                    f"take it over with `handover route rollout {route.name} --take-over`"
                    if gone
                    else f"its next write is due by {stale_at(current).strftime('%H:%M:%SZ')}; "
                    "after that it may be taken over with --take-over"
                )
                raise WriteConflict(
                    f"{current.owner} is running a rollout of route {route.name!r} "
                    f"({rollout_summary(current, now=now)}); a second one cannot run beside it: "
                    f"{silent}"
                )
        return stored

    def _take(self, route: Route, plan: Plan) -> Route:
        """Write the rollout as ours and running: started, resumed or taken over."""
        who = str(operator())
        now = iso_utc(datetime.now(UTC))
        current = route.rollout
        if current is None:
            rollout = Rollout(
                id=secrets.token_hex(4),
                owner=who,
                state="running",
                steps=plan.steps,
                bake_seconds=plan.bake_seconds,
                alarms=plan.alarms,
                insufficient_data_aborts=plan.insufficient_data_aborts,
                reached=0,
                since=now,
                started_at=now,
            )
            action, reason = "rollout-start", plan.describe()
        else:
            rollout = replace(current, owner=who, state="running", since=now)
            if current.state == "stopped":
                action, reason = "rollout-resume", f"resumed at step {current.reached}"
            else:
                action = "rollout-takeover"
                reason = f"taken over from {current.owner} (silent since {current.since})"
        written = self.routes.write(route, route.percent, rollout, action=action, reason=reason)
        self.progress.line(
            f"rollout of route {route.name}: {plan.describe()}"
            + ("" if action == "rollout-start" else f" ({reason})")
        )
        return written

    def _steps(self, route: Route, plan: Plan, alarms: Alarms) -> Result:
        total = len(plan.steps)
        while True:
            rollout = route.rollout
            assert rollout is not None  # written by _take, kept by every step
            if rollout.reached:
                halted = self._bake(route, plan, alarms)
                if halted is not None:
                    return halted
            else:
                firing = self._look(alarms, route)
                if isinstance(firing, Result):
                    return firing
                if firing:
                    return self._abort(route, firing)
            if rollout.next_step is None:
                done = self.routes.write(
                    route,
                    route.percent,
                    None,
                    action="rollout-done",
                    reason=f"{total} steps baked: {plan.describe()}",
                )
                return Result(
                    Outcome.DONE,
                    done,
                    f"rollout of route {route.name} done: {format_percent(done.percent)}% to "
                    f"{done.new.label} after {total} steps, every bake quiet",
                )
            step = rollout.reached + 1
            raised = self.routes.write(
                route,
                rollout.next_step,
                replace(rollout, reached=step, since=iso_utc(datetime.now(UTC))),
                action="rollout-step",
                reason=f"step {step}/{total}",
            )
            self.progress.line(
                f"step {step}/{total}: {format_percent(route.percent)}% -> "
                f"{format_percent(raised.percent)}% to {raised.new.label} (version "
                f"{raised.version}); baking {format_duration(plan.bake_seconds)}"
            )
            route = raised

    def _bake(self, route: Route, plan: Plan, alarms: Alarms) -> Result | None:
        """Hold the step for the bake time, looking at the alarms every poll and once more at
        its end; a Result if the rollout ends here."""
        rollout = route.rollout
        assert rollout is not None
        label = (
            f"step {rollout.reached}/{len(plan.steps)} at {format_percent(route.percent)}%, "
            f"alarms quiet, bake {format_duration(plan.bake_seconds)}"
        )
        started = self.clock()
        unreadable = 0
        while True:
            looked = self._look(alarms, route)
            if isinstance(looked, Result):
                return looked
            if looked is None:
                unreadable += 1
                if unreadable >= UNREADABLE_LOOKS:
                    stopped = self._stop(self.routes.get(self.name), unreadable=True)
                    return replace(stopped, outcome=Outcome.HALTED)
            else:
                unreadable = 0
                if looked:
                    return self._abort(route, looked)
            elapsed = self.clock() - started
            if elapsed >= plan.bake_seconds and unreadable == 0:
                self.progress.end_wait()
                return None
            # Wait for the next look, showing the time pass a tick at a time on the way.
            next_look = min(elapsed + self.poll_seconds, max(elapsed, plan.bake_seconds))
            while True:
                self.progress.progress(label, elapsed)
                if elapsed >= next_look:
                    break
                self.sleep(max(0.01, min(PROGRESS_TICK_SECONDS, next_look - elapsed)))
                elapsed = self.clock() - started

    def _look(self, alarms: Alarms, route: Route) -> list[AlarmState] | Result | None:
        """The alarms that abort (None if CloudWatch did not answer), or a Result if the route
        was changed by someone else since we wrote it."""
        try:
            firing = alarms.aborting(alarms.states())
        except StoreUnavailable as exc:
            self.progress.line(f"could not read the alarms: {exc}")
            firing = None
        current = self.routes.get(self.name)
        if current.version != route.version:
            return Result(
                Outcome.HALTED,
                current,
                f"route {route.name} was changed by {current.updated_by} while the rollout ran "
                f"(now {format_percent(current.percent)}%, version {current.version}: "
                f"{current.reason or 'no reason given'}); the rollout stops and writes nothing",
            )
        return firing

    def _abort(self, route: Route, firing: list[AlarmState]) -> Result:
        rollout = route.rollout
        assert rollout is not None
        where = (
            f"step {rollout.reached}/{len(rollout.steps)} ({format_percent(route.percent)}%)"
            if rollout.reached
            else f"the start, before the first step ({format_percent(route.percent)}%)"
        )
        reason = f"{'; '.join(state.describe() for state in firing)} at {where}"
        for attempt in range(ABORT_ATTEMPTS):
            try:
                aborted = self.routes.write(
                    route, Decimal(0), None, action="rollout-abort", reason=reason
                )
                break
            except WriteConflict:
                # The abort must land whatever was written meanwhile: read again, write again.
                if attempt == ABORT_ATTEMPTS - 1:
                    raise
                route = self.routes.get(self.name)
        return Result(
            Outcome.ABORTED,
            aborted,
            f"ABORTED: {reason}; route {route.name} is back at 0%: everything to "
            f"{aborted.old.label} (version {aborted.version})",
        )

    def _stop(self, route: Route, *, unreadable: bool = False) -> Result:
        """Leave the route at its step and mark the rollout stopped, to be resumed."""
        rollout = route.rollout
        self.progress.end_wait()
        if rollout is None:
            return Result(Outcome.HALTED, route, f"route {route.name} has no rollout any more")
        why = "the alarms could not be read" if unreadable else "interrupted (Ctrl-C)"
        stopped = self.routes.write(
            route,
            route.percent,
            replace(rollout, state="stopped"),
            action="rollout-stop",
            reason=f"{why} at step {rollout.reached}/{len(rollout.steps)}",
        )
        return Result(
            Outcome.STOPPED,
            stopped,
            f"{why[0].upper()}{why[1:]}: route {route.name} stays at "
            f"{format_percent(route.percent)}% "
            f"(step {rollout.reached} of {len(rollout.steps)}). Resume with `handover route "
            f"rollout {route.name}` (the step bakes again in full), or send everything back "
            f"with `handover route abort {route.name}`.",
        )
