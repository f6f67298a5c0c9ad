"""The daemon's defences against the wall clock: APScheduler's interval trigger made to
skip what a step missed, a watch that notices steps, and (several nodes on PostgreSQL) the
database's clock, which the shared schedule keeps so that one node's step moves only its
own view, with the skew that pauses a node whose clock disagrees with it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from apscheduler.triggers.interval import IntervalTrigger

from notifier import log as logs
from notifier._tasks import steady_clock
from notifier.store import Store, StoreError, StoreUnavailable

log = logs.get_logger(component="daemon")

#: A change of the wall clock against the monotonic clock by more than this between two
#: looks (a second apart) is a step (someone set the clock, a VM resumed), not NTP slewing.
CLOCK_STEP = 2.0
#: A node whose wall clock is off the database's by more than this sends no webhook and
#: calls no vendor: Standard Webhooks receivers allow 5 minutes, and a clock that far off is
#: broken (NTP keeps hosts within milliseconds).
SKEW_LIMIT = 5.0
#: How often the database's clock is sampled (off the event loop).
SAMPLE_EVERY = 2.0
#: How often the wall clock is compared with the monotonic one.
CLOCK_CHECK_EVERY = 1.0


class SteadyInterval(IntervalTrigger):  # type: ignore[misc]  # untyped library
    """An interval trigger that skips, rather than walks, the runs a forward clock step missed.

    APScheduler 3 lists every missed run time before coalescing them: after a two-day step, a
    0.2 s job has 864,000, and the loop spends minutes computing them (seen: the daemon froze).
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        following: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        behind = following is not None and following < now - self.interval
        return now if previous_fire_time is not None and behind else following


class ClockWatch:
    """Notices steps of the system clock: the wall clock moving against the monotonic one."""

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()
        #: A step the stored schedule has not been moved by yet.
        self.pending = 0.0

    def step(self) -> float | None:
        offset = time.time() - time.monotonic()
        step = offset - self._offset
        self._offset = offset
        return step if abs(step) > CLOCK_STEP else None


class Sample(NamedTuple):
    """One look at the database's clock: its time at ``steady`` (this host's steady clock),
    and this host's wall clock minus it then."""

    database: float
    steady: float
    skew: float
    round_trip: float


class DatabaseClock:
    """The database's time, estimated between samples on this host's steady clock.

    A sample is the server's ``clock_timestamp()`` taken to be at the middle of its round
    trip (off by at most half of it). :meth:`now` never goes back: a sample that puts the
    time a little earlier than already returned holds it until it catches up, a step of the
    database's own clock (more than CLOCK_STEP) is followed.
    """

    def __init__(
        self,
        read: Callable[[], float],
        *,
        steady: Callable[[], float] = steady_clock,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._steady = steady
        self._wall = wall
        self._base: Sample | None = None
        self._last = float("-inf")

    def take(self) -> Sample:
        """Ask the database (blocking: on a worker thread, with a connection of its own)."""
        sent = self._steady()
        database = self._read()
        back = self._steady()
        wall = self._wall()
        at_back = database + (back - sent) / 2
        return Sample(at_back, back, wall - at_back, back - sent)

    def apply(self, sample: Sample) -> None:
        """Use a sample from now on (on the thread that calls :meth:`now`)."""
        if self._base is not None and self.estimate(sample.steady) - sample.database > CLOCK_STEP:
            self._last = float("-inf")  # the database's clock stepped back: follow it
        self._base = sample

    def estimate(self, steady: float) -> float:
        assert self._base is not None, "no sample yet"
        return self._base.database + (steady - self._base.steady)

    def now(self) -> float:
        now = max(self.estimate(self._steady()), self._last)
        self._last = now
        return now

    @property
    def skew(self) -> float:
        """This host's wall clock minus the database's, at the last sample."""
        return 0.0 if self._base is None else self._base.skew


class ClockDisagrees(Exception):
    """This node's clock is off the database's by more than SKEW_LIMIT."""


class GatedLeaseStore:
    """The lease keeper's store, renewing nothing while this node's clock disagrees with the
    database's: the renewal fails (as when the database is unreachable), so the lease runs
    out and a node with a good clock takes over the vendor calls. Everything else passes."""

    def __init__(self, store: Any) -> None:
        self._store = store
        #: Why renewals are refused now; None: they pass.
        self.refusal: str | None = None

    def acquire_lease(self, *args: Any, **kwargs: Any) -> Any:
        refusal = self.refusal
        if refusal is not None:
            raise ClockDisagrees(refusal)
        return self._store.acquire_lease(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class SkewGuard:
    """PostgreSQL: the database's clock for a node (sampled every SAMPLE_EVERY on a
    connection of its own, off the loop), and the pause of a node whose wall clock is off
    it by more than SKEW_LIMIT: said once (an ``error``), and once when it agrees again.
    ``on_change`` gets the reason to pause (None: resume) after each sample."""

    def __init__(self, store: Store, on_change: Callable[[str | None], None]) -> None:
        self.store = store
        self.clock = DatabaseClock(store.database_clock)
        self.on_change = on_change
        #: Why this node neither sends nor calls, None while the clocks agree.
        self.off: str | None = None
        self._since = 0.0
        try:
            self.clock.apply(self.clock.take())
        except Exception as exc:
            store.close()
            raise StoreError(f"{store.where}: cannot read the database's clock: {exc}") from None

    async def keep(self, stop: asyncio.Event) -> None:
        """Sample until ``stop``; a sample that fails (server away: the store outage says
        so) keeps the last estimate."""
        while not stop.is_set():
            try:
                sample = await asyncio.to_thread(self.clock.take)
            except Exception as exc:
                log.debug("cannot sample the database's clock", error=str(exc))
            else:
                self.clock.apply(sample)
                self.judge(sample.skew)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)

    def judge(self, skew: float) -> None:
        if abs(skew) > SKEW_LIMIT:
            if self.off is None:
                self._since = time.monotonic()
                log.error(
                    "this node's clock disagrees with the database's; it sends no webhooks "
                    "and calls no vendor until they agree",
                    skew_seconds=round(skew, 3),
                    limit=SKEW_LIMIT,
                    hint="fix the time on this host (NTP); the node resumes by itself",
                )
            self.off = (
                f"this node's clock is {skew:+.1f}s off the database's (limit {SKEW_LIMIT:g}s)"
            )
        elif self.off is not None:
            log.warning(
                "this node's clock agrees with the database's again; sending and calling resumed",
                skew_seconds=round(skew, 3),
                paused_seconds=round(time.monotonic() - self._since, 1),
            )
            self.off = None
        self.on_change(self.off)


class NodeClock:
    """The daemon's ``now``: the database's time on PostgreSQL (``skew``), where a step of
    this host's clock moves nothing shared; the wall clock on SQLite, whose one daemon moves
    its stored schedule by each step (``shift``) so a minute's wait stays a minute. Either
    way a step re-arms the scheduler's ticks (``rearm``): APScheduler is on the wall clock."""

    def __init__(
        self,
        skew: SkewGuard | None,
        rearm: Callable[[], None],
        shift: Callable[[float], None],
        unwritable: Callable[[], object],
    ) -> None:
        self.watch = ClockWatch()
        self.skew = skew
        self._rearm = rearm
        self._shift = shift
        self._unwritable = unwritable

    def now(self) -> float:
        """After a look for a step: one noticed only at the next second's look could
        meanwhile make a watch look older (or younger) than it is."""
        self.check()
        return time.time() if self.skew is None else self.skew.clock.now()

    def keep_checking(self, stop: asyncio.Event) -> None:
        """Look for a step every CLOCK_CHECK_EVERY until ``stop``, on the loop's own
        (monotonic) timer: APScheduler's jobs are on the wall clock, so this one must not be."""
        self.check()
        if not stop.is_set():
            asyncio.get_running_loop().call_later(CLOCK_CHECK_EVERY, self.keep_checking, stop)

    def check(self) -> None:
        step = self.watch.step()
        if step is None:
            return
        if self.skew is not None:
            event = "system clock stepped; the shared schedule keeps the database's time"
        else:
            event = "system clock stepped; pending polls, deliveries and expiries move with it"
        log.warning(event, step_seconds=round(step, 3))
        self._rearm()
        if self.skew is None:
            self.watch.pending += step
            self.shift()

    def shift(self) -> None:
        """Move the stored schedule by the steps not applied yet (tried again a second later
        while the state cannot be written)."""
        if not self.watch.pending:
            return
        try:
            self._shift(self.watch.pending)
        except StoreUnavailable:
            self._unwritable()
            asyncio.get_running_loop().call_later(CLOCK_CHECK_EVERY, self.shift)
            return
        self.watch.pending = 0.0


def rearm(scheduler: Any) -> None:
    """Run every job of ``scheduler`` (an APScheduler) now: after a backward step it would
    otherwise wait the step out before any tick runs again."""
    now = datetime.now().astimezone()
    for job in scheduler.get_jobs():
        job.modify(next_run_time=now)
