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

**Owner.** ``state.node`` is a *name* (what logs, metrics and other nodes show); the row's
owner is that name plus a random id of this process (:func:`make_owner`), so two processes
given one name (two units on a host with ``node: ${HOSTNAME}``, containers that all run as
PID 1 under one hostname) never renew each other's lease. Each also keeps a presence row
(``node:NAME``, owned the same way, renewed at every look): a process whose name another
live process already uses is warned about, even when neither holds the vendor lease.

**Pauses the steady clock does not see.** A hypervisor pause (``virsh suspend``, a long
live migration) stops the guest's CLOCK_BOOTTIME too, so on resume the deadline looks as
far away as before. While it holds the lease the keeper therefore looks at the lease row
every PROBE_EVERY between renewals and derives the deadline again from the *database's*
clock (sent + what the row has left); the deadline only ever moves nearer this way. When it
moved nearer by more than PAUSE_TOLERANCE the node was paused: that is logged, and renewed
at once. A row that names another owner shuts the gate at once. Calls sent between the
resume and that first look (at most PROBE_EVERY plus one round trip) are not covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from notifier._tasks import steady_clock
from notifier.log import get_logger
from notifier.store.lease import owner_name

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
#: While holding, the lease row is looked at this often between renewals: a node resumed
#: from a pause its steady clock did not see shuts its gate within this (plus a round trip).
PROBE_EVERY = 0.25
#: A deadline that a look moves nearer by more than this means the node was paused (its
#: steady clock stood still while the database's ran); less is the look's own round trip.
PAUSE_TOLERANCE = 0.5
#: Presence rows: one per node name, so a second process with a name in use is noticed.
PRESENCE_PREFIX = "node:"
#: A clean stop waits at most this long for the release statement.
RELEASE_TIMEOUT = 2.0
#: A lease handed over to spread the accounts over the nodes is not taken back by this node
#: for this long: time for a node with fewer leases to take it (its standby look comes every
#: STANDBY_EVERY, after the release's MARGIN). If nobody does, this node takes it again.
HAND_OVER_HOLD = MARGIN + 2 * STANDBY_EVERY
#: The shortest lease that leaves time to call between renewals (``state.lease`` is checked
#: against it where the settings are built: notifier.service.settings).
MIN_TTL = MARGIN + 1.0


@dataclass(frozen=True)
class LeaseSettings:
    """What the keeper takes of the config: ``state.lease`` and ``gateway.advertise``."""

    ttl: float
    #: Where this node's gateway is reachable (published with every take and renewal).
    advertise: str | None = None

    def __post_init__(self) -> None:
        if self.ttl < MIN_TTL:
            raise ValueError(f"a lease of {self.ttl}s leaves no time to call between renewals")


def make_owner(node: str) -> str:
    """The lease rows' owner for this process: its name plus a random id (unique per process,
    whatever name it was given)."""
    return f"{node}#{secrets.token_hex(6)}"


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

    def lease_owner(self, name: str) -> tuple[str, float] | None: ...


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
        settings: LeaseSettings,
        *,
        sole: bool = False,
        clock: Callable[[], float] = steady_clock,
        name: str = LEASE_NAME,
        owner: str | None = None,
        presence: bool = True,
        db: asyncio.Lock | None = None,
    ) -> None:
        """Several accounts: one keeper per account's lease (``name``), all of one process
        with one ``owner``, one of them keeping the presence row (``presence``), and one
        ``db`` lock, since they share the one connection ``store``."""
        self.store = store
        self.node = node
        #: The rows' owner: ``node`` plus this process's random id (see the module's doc).
        self.owner = owner or make_owner(node)
        self._presence = presence
        self._db = db or asyncio.Lock()
        #: While the steady clock is before this, a lease not held is not taken (it was just
        #: handed over to another node).
        self.hold_off_until = -math.inf
        self._hand_over = False
        #: Asked before taking a lease not held (several accounts: whether this node has
        #: room for one more, see notifier.polling.spread); None: always.
        self.may_take: Callable[[LeaseKeeper], bool] | None = None
        #: Standby looks in a row that found the lease free (nobody took it).
        self.free_looks = 0
        #: Another live process with this node's name, as the last look saw it (None: none).
        self.name_in_use_by: str | None = None
        #: Whether :attr:`holder` is this process (not another one that has our name).
        self._holder_ours = False
        #: A look found the lease gone or shortened: renew now, not when due.
        self._renew_soon = False
        #: Pauses the steady clock did not see, found by :meth:`probe`.
        self.pauses = 0
        self.ttl = settings.ttl
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
        self.advertise: str | None = settings.advertise
        #: The holder's advertise URL at the last look that worked (ours while we hold it;
        #: None: nobody holds it, or the holder gave none): where a standby forwards to, read
        #: here on the keeper's own thread so the event loop never waits for the database.
        self.holder_advertise: str | None = None
        #: Why the last renewal failed, None after one that worked.
        self.problem: str | None = None
        self.changes = {"acquired": 0, "lost": 0, "released": 0, "handed_over": 0}
        #: Vendor calls held back at the gate (counted here: it outlives vendor clients).
        self.withheld = 0
        #: Why this node must not call the vendor whatever the lease says (its clock is off
        #: the database's), None: nothing holds it back.
        self.paused: str | None = None

    def configure(self, settings: LeaseSettings) -> None:
        """A reload: the new length counts from the next renewal on, and the next renewal
        publishes the new advertise URL."""
        self.ttl = settings.ttl
        self.advertise = settings.advertise

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
        force = self._sole and self.changes["acquired"] == 0
        advertise = self.advertise
        # Just handed over: not taken back unless still ours (or nobody took it in time).
        taking = self.deadline > self._clock() or (
            self._clock() >= self.hold_off_until and (self.may_take is None or self.may_take(self))
        )
        try:
            if self._presence:
                await self._mark_presence(force)
            sent = self._clock()
            grant = None
            if taking:
                grant = await self._call(
                    self.store.acquire_lease,
                    self.name,
                    self.owner,
                    self.ttl,
                    force=force,
                    advertise=advertise,
                )
            if grant is None:
                self.deadline = -math.inf  # another node holds it: ours is gone
                holder = await self._call(self.store.lease_holder, self.name)
                # A takeover between the two reads is seen at the next look, a second on.
                theirs = await self._call(self.store.lease_advertise, self.name)
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
        self._renew_soon = False
        self.free_looks = self.free_looks + 1 if grant is None and not holder else 0
        if grant is not None:
            left, previous = grant
            self.deadline = sent + left
            self.holder = self.node
            self._holder_ours = True
            self.holder_advertise = advertise
            self._look(None if previous is None else owner_name(previous), reason="")
        else:
            self.holder = owner_name(holder[0]) if holder else None
            self._holder_ours = False
            self.holder_advertise = theirs if holder else None
            self._look(None, reason="another node holds it")

    async def _mark_presence(self, force: bool) -> None:
        """Renew this process's presence row (``node:NAME``); warn once when another live
        process holds it: it was given the same ``state.node``."""
        presence = PRESENCE_PREFIX + self.node
        grant = await self._call(
            self.store.acquire_lease, presence, self.owner, self.ttl, force=force
        )
        if grant is not None:
            self.name_in_use_by = None
            return
        other = await self._call(self.store.lease_owner, presence)
        if other is None or other[0] == self.name_in_use_by:
            return
        self.name_in_use_by = other[0]
        log.warning(
            "another live process uses this node name (state.node); give each process a name "
            "of its own, or logs, metrics and /healthz cannot tell them apart",
            node=self.node,
            hint="two units on one host need different state.node values; the default "
            "(hostname:pid) collides only where hostnames and pids repeat (containers)",
        )

    async def probe(self) -> None:
        """Between renewals, while holding: read the lease row and derive the deadline again
        from the database's clock (never later than it was). This is how a node resumed from
        a pause its steady clock did not see (a suspended VM) finds its lease shorter or gone."""
        sent = self._clock()
        try:
            row = await self._call(self.store.lease_owner, self.name)
        except Exception:  # nothing learned; the renewal reports database trouble
            return
        if row is None or row[0] != self.owner:
            self.deadline = -math.inf
            self.holder = owner_name(row[0]) if row else None
            self._holder_ours = False
            self._renew_soon = True
            self._look(None, reason="another node holds it (this node was paused?)")
            return
        derived = sent + row[1]
        shortened = self.deadline - derived
        if shortened > PAUSE_TOLERANCE:
            self.pauses += 1
            self._renew_soon = True
            log.warning(
                "this node was paused (its clocks stood still while the database's ran); "
                "the vendor lease's deadline moved nearer",
                node=self.node,
                paused_seconds=round(shortened, 2),
                seconds_left=round(max(0.0, derived - self._clock()), 2),
            )
        self.deadline = min(self.deadline, derived)
        paused = shortened > PAUSE_TOLERANCE
        self._look(None, reason=f"paused for {shortened:.1f}s" if paused else "not renewed in time")

    async def _call(self, statement: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One statement on the keeper's connection, off the loop; the keepers of one process
        share that connection, so they take turns."""
        async with self._db:
            return await asyncio.to_thread(statement, *args, **kwargs)

    def request_hand_over(self) -> None:
        """Give the lease up at the next look and stand by for HAND_OVER_HOLD: this node
        holds more accounts' leases than its share (see notifier.polling.spread)."""
        if self.may_call():
            self._hand_over = True

    async def _give_up(self) -> None:
        """The hand-over: the gate shuts now, the row frees MARGIN later (as on a stop)."""
        self._hand_over = False
        closed = self._clock()
        self.deadline = -math.inf
        self.hold_off_until = closed + HAND_OVER_HOLD
        self.held = False
        try:
            await self._call(self.store.release_lease, self.name, self.owner, MARGIN)
        except Exception as exc:  # it lapses instead; the next look reports the database
            log.warning(
                "cannot hand the vendor lease over; it lapses",
                node=self.node,
                lease=self.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self.changes["handed_over"] += 1
        log.info(
            "vendor lease handed over; another node with fewer takes it",
            node=self.node,
            lease=self.name,
        )

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
                holder=None if self._holder_ours else self.holder,
                reason=reason,
            )

    # -- the loop -------------------------------------------------------------------------

    async def start(self) -> None:
        """The first look (before the daemon says it is ready), then :meth:`run` in a task."""
        await self.renew()
        self._task = asyncio.create_task(self.run(first=False), name="lease keeper")

    async def run(self, *, first: bool = True) -> None:
        """Renew every :attr:`renew_every` while held (and :meth:`probe` every PROBE_EVERY in
        between), else try every second, until closed."""
        started = self._clock()
        if first:
            await self.renew()
        while True:
            holding = self.held and self.problem is None
            due = started + (self.renew_every if holding else STANDBY_EVERY)
            wake = min(due, self._clock() + PROBE_EVERY) if holding else due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, wake - self._clock()))
            if self._stopping.is_set():
                return
            if self._hand_over:
                await self._give_up()
                started = self._clock()
                continue
            if holding and self._clock() < due and not self._renew_soon:
                await self.probe()
                if not self._renew_soon:
                    continue
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
                self._call(self._release_rows, holdoff),
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

    def _release_rows(self, holdoff: float) -> bool:
        """The vendor lease (after ``holdoff``) and this process's presence row (at once)."""
        released = self.store.release_lease(self.name, self.owner, holdoff)
        if self._presence:
            self.store.release_lease(PRESENCE_PREFIX + self.node, self.owner)
        return released

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
        holder = "nobody" if self.holder is None or self._holder_ours else self.holder
        if holder == self.node:
            holder += " (another process with this node's name)"
        return f"standby ({self.node}): vendor lease held by {holder}"


__all__ = [
    "MARGIN",
    "LeaseKeeper",
    "LeaseLost",
    "LeaseStore",
    "make_owner",
    "owner_name",
    "steady_clock",
]
