"""The vendor lease: at most one node calls the vendor at a time.

The budget (``chanjing.qps``) is per vendor account, so when several daemons share one state
database only the holder of the ``vendor`` lease may call: a row in the database, taken and
renewed by an atomic UPSERT, whose expiry is decided on the database's clock (one clock for all
nodes). Everything that needs no vendor (intake, deliveries, housekeeping) runs on every node.

**Deadline.** The keeper turns the database's "seconds left" into a deadline on this host's
steady clock, measured from *before* the statement was sent: a slow round trip, or a freeze
while it was in flight, only shortens it, and wall-clock steps do not touch it. The steady
clock is CLOCK_BOOTTIME where there is one: unlike CLOCK_MONOTONIC it also runs while the
host is suspended, so a suspended machine wakes up with its deadline passed, not paused.

**MARGIN.** A call is sent only while at least MARGIN is left (checked when the request's
first byte is about to be written, after any wait at the limiter or for a connection). Let E
be the expiry on the database's clock; our deadline is at or before E, so our last call
leaves by E - MARGIN and reaches the vendor by E - MARGIN + IN_FLIGHT. Another node can take
the lease at E at the earliest, and calls only after that. The vendor counts calls per
calendar second, and each node's limiter keeps its own calls within ``qps`` per second
(its window is one second); for no calendar second to see calls of both nodes, the old
holder's last arrival and the new holder's first must be at least that window (1 s) apart:
MARGIN = WINDOW + IN_FLIGHT = 2 s. A node frozen (SIGSTOP) between its check and its send
is the one case this cannot cover; the window for it is the few microseconds between the
check and the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Protocol

from notifier.config.sections import MIN_LEASE
from notifier.log import get_logger

log = get_logger(component="lease")

LEASE_NAME = "vendor"
#: The vendor's calendar second, which the limiter's window also spans.
WINDOW = 1.0
#: From the last look at the lease to the request's arrival at the vendor.
IN_FLIGHT = 1.0
MARGIN = WINDOW + IN_FLIGHT
#: A node without the lease tries to take it this often: a dead holder is replaced within
#: ``state.lease`` plus this.
STANDBY_EVERY = 1.0
#: A clean stop waits at most this long for the release statement.
RELEASE_TIMEOUT = 2.0
assert MIN_LEASE >= MARGIN + 1.0, "state.lease must leave time to call between renewals"


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def steady_clock() -> float:
    """Seconds on a clock that never steps and keeps running through a suspend."""
    return time.monotonic() if _BOOTTIME is None else time.clock_gettime(_BOOTTIME)


class LeaseLost(Exception):
    """This node does not hold the vendor lease with MARGIN left: the call was not sent."""


class LeaseStore(Protocol):
    """What the keeper needs of a state store (each backend has these)."""

    def acquire_lease(
        self,
        name: str,
        owner: str,
        ttl: float,
        *,
        force: bool = False,
        advertise: str | None = None,
    ) -> tuple[float, str | None] | None: ...

    def release_lease(self, name: str, owner: str, holdoff: float = 0.0) -> bool: ...

    def lease_holder(self, name: str) -> tuple[str, float] | None: ...

    def lease_advertise(self, name: str) -> str | None: ...


class LeaseKeeper:
    """Takes, renews and releases this node's vendor lease, and is the gate every vendor
    call passes (:meth:`check`).

    ``store`` is a connection of the keeper's own: its statements run on a worker thread, so
    a slow database delays only the renewals (whose deadline then runs out), never the loop.
    ``sole``: no other daemon can run on this state (the SQLite instance lock is held), so
    the first take does not wait out a lease its crashed predecessor left behind.
    """

    def __init__(
        self,
        store: LeaseStore,
        node: str,
        ttl: float,
        *,
        sole: bool = False,
        clock: Callable[[], float] = steady_clock,
        name: str = LEASE_NAME,
    ) -> None:
        self.store = store
        self.node = node
        self.ttl = ttl
        self.name = name
        self._sole = sole
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: When the gate shut for a stop (this host's steady clock), None while running.
        self._closed_at: float | None = None
        #: When the lease runs out on this host's steady clock (-inf: not held).
        self.deadline = -math.inf
        #: Whether the gate was open at the last look (changes are counted and logged there).
        self.held = False
        #: The owner the database named at the last look (None: nobody, or not known).
        self.holder: str | None = None
        #: Where this node's gateway is reachable, written with every take and renewal (set
        #: it at any time, e.g. on reload: the next renewal publishes it).
        self.advertise: str | None = None
        #: The holder's advertise URL at the last look that worked (ours while we hold it;
        #: None: nobody holds it, or the holder gave none): where a standby forwards to, read
        #: here on the keeper's own thread so the event loop never waits for the database.
        self.holder_advertise: str | None = None
        #: Why the last renewal failed, None after one that worked.
        self.problem: str | None = None
        self.changes = {"acquired": 0, "lost": 0, "released": 0}
        #: Vendor calls held back at the gate (counted here: it outlives vendor clients).
        self.withheld = 0
        #: Why this node must not call the vendor whatever the lease says (its clock is off
        #: the database's), None: nothing holds it back.
        self.paused: str | None = None

    @property
    def renew_every(self) -> float:
        """A third of the lease, and often enough that one late renewal still leaves MARGIN."""
        return min(self.ttl / 3, (self.ttl - MARGIN) / 2)

    def remaining(self) -> float:
        return max(0.0, self.deadline - self._clock())

    def may_call(self) -> bool:
        return (
            self._closed_at is None
            and self.paused is None
            and self.deadline - self._clock() >= MARGIN
        )

    def check(self) -> None:
        """The gate: raises LeaseLost unless a call sent now is safe."""
        if not self.may_call():
            self.withheld += 1
            raise LeaseLost(f"not sent: node {self.node} does not hold the vendor lease")

    # -- one look at the database ---------------------------------------------------------

    async def renew(self) -> None:
        """Take or renew the lease once; a failure extends nothing (the deadline runs out).
        Not concurrently with itself or :meth:`release` (one connection): :meth:`run` calls it."""
        sent = self._clock()
        force = self._sole and self.changes["acquired"] == 0
        advertise = self.advertise
        try:
            grant = await asyncio.to_thread(
                self.store.acquire_lease,
                self.name,
                self.node,
                self.ttl,
                force=force,
                advertise=advertise,
            )
            if grant is None:
                self.deadline = -math.inf  # another node holds it: ours is gone
                holder = await asyncio.to_thread(self.store.lease_holder, self.name)
                # A takeover between the two reads is seen at the next look, a second on.
                theirs = await asyncio.to_thread(self.store.lease_advertise, self.name)
        except Exception as exc:  # the keeper must outlive any database trouble
            problem = f"{type(exc).__name__}: {exc}"
            if self.problem is None:
                log.warning(
                    "cannot renew the vendor lease; it lapses unless a renewal works",
                    node=self.node,
                    error=problem,
                    seconds_left=round(self.remaining(), 2),
                )
            self.problem = problem
            self._look(None, reason=f"not renewed in time ({problem})")
            return
        self.problem = None
        if grant is not None:
            left, previous = grant
            self.deadline = sent + left
            self.holder = self.node
            self.holder_advertise = advertise
            self._look(previous, reason="")
        else:
            self.holder = holder[0] if holder else None
            self.holder_advertise = theirs if holder else None
            self._look(None, reason="another node holds it")

    def _look(self, previous: str | None, reason: str) -> None:
        """Count and log a change of whether this node may call the vendor."""
        now_held = self.may_call()
        if now_held == self.held or self._closed_at is not None:
            return
        self.held = now_held
        if now_held:
            self.changes["acquired"] += 1
            log.info(
                "vendor lease acquired; this node calls the vendor",
                node=self.node,
                previous_holder=previous,
                lease=self.ttl,
            )
        else:
            self.changes["lost"] += 1
            log.warning(
                "vendor lease lost; this node stops calling the vendor",
                node=self.node,
                previous_holder=self.node,
                holder=self.holder if self.holder != self.node else None,
                reason=reason,
            )

    # -- the loop -------------------------------------------------------------------------

    async def start(self) -> None:
        """The first look (before the daemon says it is ready), then :meth:`run` in a task."""
        await self.renew()
        self._task = asyncio.create_task(self.run(first=False), name="lease keeper")

    async def run(self, *, first: bool = True) -> None:
        """Renew every :attr:`renew_every` while held, else try every second, until closed."""
        started = self._clock()
        if first:
            await self.renew()
        while True:
            wait = self.renew_every if self.held and self.problem is None else STANDBY_EVERY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), max(0.0, started + wait - self._clock())
                )
            if self._stopping.is_set():
                return
            started = self._clock()
            await self.renew()

    def close(self) -> None:
        """A stop begins: the gate shuts at once and renewals stop (:meth:`release` after the
        last calls ended)."""
        if self._closed_at is None:
            self._closed_at = self._clock()
            self.held = False
        self._stopping.set()

    async def release(self) -> None:
        """Hand the lease over: free MARGIN after the gate shut (sooner, another node's calls
        could share a calendar second with our last ones), at once if that is past."""
        self.close()
        closed_at = self._closed_at
        assert closed_at is not None
        if self._task is not None:
            # A renewal in progress finishes first: it uses the same connection.
            done, _ = await asyncio.wait({self._task}, timeout=RELEASE_TIMEOUT)
            if not done:
                log.warning(
                    "cannot release the vendor lease (the database does not answer); "
                    "another node takes it when it expires",
                    node=self.node,
                )
                return
        holdoff = max(0.0, closed_at + MARGIN - self._clock())
        try:
            released = await asyncio.wait_for(
                asyncio.to_thread(self.store.release_lease, self.name, self.node, holdoff),
                RELEASE_TIMEOUT,
            )
        except Exception as exc:
            log.warning(
                "cannot release the vendor lease; another node takes it when it expires",
                node=self.node,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        finally:
            self.deadline = -math.inf
        if released:
            self.holder_advertise = None  # ours no longer; who is next is not known yet
            self.changes["released"] += 1
            log.info(
                "vendor lease released; another node may take it",
                node=self.node,
                free_in=round(holdoff, 2),
            )

    def describe(self) -> str:
        """For /healthz and sd_notify's STATUS."""
        if self._closed_at is not None:
            return f"stopping ({self.node}): vendor lease handed over"
        if self.paused is not None:
            return f"paused ({self.node}): not calling the vendor: {self.paused}"
        if self.may_call():
            return f"vendor lease held by this node ({self.node})"
        if self.problem is not None:
            return f"standby ({self.node}): cannot renew the vendor lease: {self.problem}"
        holder = self.holder if self.holder not in (None, self.node) else "nobody"
        return f"standby ({self.node}): vendor lease held by {holder}"


__all__ = ["MARGIN", "LeaseKeeper", "LeaseLost", "LeaseStore", "steady_clock"]
