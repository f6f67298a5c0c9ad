"""The one budget every vendor call spends from.

The vendor counts calls per calendar second *as they arrive*. We only control when we send,
and arrival = send + a latency that varies (a busy event loop, a slow network), so a plain
"N per second" limiter can still land N+1 calls in one vendor second. What we do know is that
a call arrived between its admission and its answer. Hence two rules:

* consecutive calls are at least ``1/rate`` apart (no bursts), and
* a call made through :meth:`call` counts against the budget from its admission until one
  second after its answer came back (while it is in flight, for as long as that takes).
  Then no ``qps + 1`` calls can arrive within one second, whatever the latency: take the
  last-admitted of them, admitted at ``A < t + 1``; every other one arrived at ``>= t`` so
  was answered after ``A - 1`` and still counted at ``A``. The cost is the round trip:
  a backlog runs at ``qps / (1 + round trip)``, 95% of the budget at 50 ms.
* a call that ended without an answer (timed out, connection lost, cancelled) may still
  reach the vendor after it ended: its request can sit in the kernel, retransmitted. The
  vendor client's sockets bound that (``TCP_USER_TIMEOUT`` = VENDOR_USER_TIMEOUT, see
  :mod:`notifier.net`): written at ``w``, the request arrives by ``w + LATE_ARRIVAL`` or
  never. We do not see ``w``, only that it is before the end ``e``, so such a call counts
  until ``e + LATE_ARRIVAL + 1``: the rule above with its arrival bound moved past ``e``.
* a bare :meth:`acquire` (no answer to wait for) counts for ``1 + guard`` seconds from its
  admission.

Callers wait in line by :class:`Priority`, then by arrival: a token refresh first (every
other call needs it), then an application's call through the gateway (someone is waiting on
it), then list sweeps and a callback's poll, then ordinary polls. A lane that goes ahead of
the polls is bounded by a :class:`Share` of the budget, so it cannot starve detection.

A 40001 answer means we got it wrong anyway (clock skew, another client on the account):
every caller pauses until a shared deadline, the rate drops, then it creeps back up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import IntEnum

#: The kernel gives up on a vendor request unacknowledged this long (TCP_USER_TIMEOUT). It
#: must fit the lease's in-flight second (``lease.IN_FLIGHT``, checked in the vendor client):
#: a call written just before the gate shuts has to reach the vendor within it. 0.75 s lets a
#: lost segment be retransmitted once or twice at Linux's 200 ms minimum RTO; a path losing
#: more fails that call (a failed poll, retried), it cannot land in another node's second.
VENDOR_USER_TIMEOUT = 0.75
#: The last retransmission's trip to the vendor (half a 500 ms intercontinental round trip).
LAST_TRIP = 0.25
#: How long after it was written an unanswered vendor request may still arrive.
LATE_ARRIVAL = VENDOR_USER_TIMEOUT + LAST_TRIP


class Priority(IntEnum):
    """Order at the limiter (lower goes first); equal priorities go in arrival order."""

    TOKEN = 0
    INTERACTIVE = 1
    URGENT = 2
    ORDINARY = 3


def _priority(value: bool | int) -> int:
    """``True``/``False`` (older callers): urgent or ordinary."""
    if isinstance(value, bool):
        return Priority.URGENT if value else Priority.ORDINARY
    return int(value)


class Share:
    """A token bucket of ``share`` of the limiter's ``qps`` per second (a burst of as many,
    at least one): how many calls a lane may send ahead of the ordinary ones."""

    def __init__(
        self, limiter: RateLimiter, share: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limiter = limiter
        self.share = share
        self._clock = clock
        self._tokens: float | None = None  # full at first
        self._filled_at = clock()

    def _capacity(self) -> float:
        return max(1.0, self.limiter.qps * self.share) if self.share > 0 else 0.0

    def _refill(self) -> float:
        capacity = self._capacity()
        now = self._clock()
        tokens = capacity if self._tokens is None else self._tokens
        tokens = min(capacity, tokens + (now - self._filled_at) * capacity)
        self._filled_at = now
        self._tokens = tokens
        return tokens

    def take(self) -> bool:
        """One call's place in the lane, if there is one now (it follows reloads of qps)."""
        tokens = self._refill()
        taken = tokens >= 1.0
        self._tokens = tokens - 1.0 if taken else tokens
        return taken

    def available_in(self) -> float:
        """Seconds until :meth:`take` can succeed (0: now; infinite with no share)."""
        capacity = self._capacity()
        if capacity <= 0:
            return math.inf
        return max(0.0, (1.0 - self._refill()) / capacity)


@dataclass
class _Admitted:
    """One admitted call: when it went, and until when it counts against the budget
    (infinite while its answer is awaited)."""

    at: float
    until: float = math.inf
    #: An answer came (its status line at least): the request had arrived by then.
    got_answer: bool = False

    def answered(self) -> None:
        """Mark the call answered: a failure after this (a body cut short) is no late call."""
        self.got_answer = True


class LimiterClosed(Exception):
    """The daemon is stopping: calls that have not been sent yet are not sent."""


@dataclass(frozen=True)
class LimiterSettings:
    """What a reload may change of the limiter: ``chanjing.qps``."""

    qps: int


class RateLimiter:
    def __init__(
        self,
        settings: LimiterSettings,
        *,
        guard: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        cooldown: float = 1.0,
        recovery_per_second: float = 0.1,
        late: float = LATE_ARRIVAL,
    ) -> None:
        """``late``: how long after a call that got no answer it may still arrive."""
        self._clock = clock
        self._late = late
        self._guard = guard
        self._cooldown = cooldown
        self._recovery = recovery_per_second
        # Whose turn it is: one caller at a time computes its slot and waits for it; the
        # others queue by (priority, arrival).
        self._busy = False
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._closed = asyncio.Event()
        self._slots: list[_Admitted] = []
        #: Set when an answer comes back: a caller waiting for calls in flight looks again.
        self._answered: asyncio.Event | None = None
        self._last_slot = -1e18
        self._paused_until = 0.0
        self._rate_at = clock()
        self.qps = settings.qps
        self.rate = float(settings.qps)
        self.calls = 0
        self.throttled = 0
        self.waiting = 0

    def configure(self, settings: LimiterSettings) -> None:
        """Apply a new budget (config reload) without forgetting recent calls."""
        qps = settings.qps
        self.rate = float(qps) if self.rate >= self.qps else min(self.rate, float(qps))
        self.qps = qps

    def _current_rate(self, now: float) -> float:
        if self.rate < self.qps:
            # Additive recovery, counted from the end of the last pause.
            since = max(self._rate_at, self._paused_until)
            if now > since:
                regained = (now - since) * self._recovery * self.qps
                self.rate = min(float(self.qps), self.rate + regained)
                self._rate_at = now
        return self.rate

    def _next_slot(self, now: float) -> float:
        """The earliest time the next call may go; infinite while ``qps`` calls count and
        the earliest to stop counting is still in flight."""
        rate = self._current_rate(now)
        slot = max(now, self._last_slot + 1.0 / rate, self._paused_until)
        self._slots = [a for a in self._slots if a.until > slot]
        if len(self._slots) >= self.qps:
            ends = sorted(a.until for a in self._slots)
            slot = max(slot, ends[len(ends) - self.qps])
        return slot

    async def _wait_for_answer(self) -> None:
        if self._answered is None:
            self._answered = asyncio.Event()
        waits = [
            asyncio.ensure_future(self._answered.wait()),
            asyncio.ensure_future(self._closed.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._closed.is_set():
            raise LimiterClosed

    def _finished(self, admitted: _Admitted, *, answered: bool = True) -> None:
        late = 0.0 if answered or admitted.got_answer else self._late
        admitted.until = self._clock() + late + 1.0
        if self._answered is not None:
            self._answered.set()
            self._answered = None

    async def _take_turn(self, priority: int) -> None:
        if not self._busy and not self._queue:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._arrivals), turn)
        heapq.heappush(self._queue, entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._pass_turn()  # handed the turn just as we were cancelled: pass it on
            elif entry in self._queue:  # a turn passed over us while cancelled popped it
                self._queue.remove(entry)
                heapq.heapify(self._queue)
            raise

    def _pass_turn(self) -> None:
        while self._queue:
            _priority, _arrival, turn = heapq.heappop(self._queue)
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False

    async def acquire(self, *, priority: bool | int = False) -> None:
        """Wait for this caller's slot; the call then counts for ``1 + guard`` seconds.
        Callers are served by :class:`Priority`, then in arrival order (``True``: urgent,
        ``False``: ordinary)."""
        admitted = await self._admit(priority)
        admitted.until = admitted.at + 1.0 + self._guard

    @contextlib.asynccontextmanager
    async def call(self, *, priority: bool | int = False) -> AsyncIterator[_Admitted]:
        """``acquire``, then the block sends the call and reads its answer: the call counts
        until one second after the block ends, and LATE_ARRIVAL longer when the block raised
        before it marked the call :meth:`~_Admitted.answered` (see the module's docstring)."""
        admitted = await self._admit(priority)
        try:
            yield admitted
        except BaseException:
            self._finished(admitted, answered=False)
            raise
        self._finished(admitted)

    async def _admit(self, priority: bool | int) -> _Admitted:
        self.waiting += 1
        try:
            await self._take_turn(_priority(priority))
            try:
                if self._closed.is_set():
                    raise LimiterClosed
                slot = self._next_slot(self._clock())
                while math.isinf(slot):
                    await self._wait_for_answer()
                    slot = self._next_slot(self._clock())
                admitted = _Admitted(slot)
                self._slots.append(admitted)
                previous, self._last_slot = self._last_slot, slot
                self.calls += 1
                try:
                    # Sleep holding the turn: the next caller's slot depends on this one.
                    await self._sleep(slot - self._clock())
                    # A 40001 may have arrived while we slept; honour the pause.
                    while self._paused_until > self._clock():
                        await self._sleep(self._paused_until - self._clock())
                except BaseException:
                    # Never sent (we still hold the turn: nobody went after it): forget it.
                    self._slots.remove(admitted)
                    self._last_slot = previous
                    self.calls -= 1
                    raise
                # Record when we really go, which is what the next slot is spaced from.
                admitted.at = self._last_slot = max(slot, self._clock())
                return admitted
            finally:
                self._pass_turn()
        finally:
            self.waiting -= 1

    async def _sleep(self, delay: float) -> None:
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
        if self._closed.is_set():
            raise LimiterClosed

    def close(self) -> None:
        """Release every waiting caller with LimiterClosed."""
        self._closed.set()

    def throttle(self) -> None:
        """The vendor said 40001: pause everyone and slow down."""
        now = self._clock()
        self.throttled += 1
        self._paused_until = max(self._paused_until, now + self._cooldown)
        self.rate = max(1.0, min(self.rate, float(self.qps)) * 0.7)
        self._rate_at = self._paused_until

    def in_use(self, horizon: float = 1.0) -> float:
        """Calls scheduled in the last ``horizon`` seconds, as a fraction of the budget."""
        now = self._clock()
        recent = sum(1 for a in self._slots if now - horizon < a.at <= now)
        return recent / (self.qps * horizon)
