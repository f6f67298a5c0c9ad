"""The one budget every vendor call spends from.

The vendor counts calls per calendar second *as they arrive*. We only control when we send,
and arrival = send + a latency that varies, so a plain "N per second" limiter can still land
N+1 calls in one vendor second. Two rules keep us under it with a margin while still
sustaining ~95% of the budget:

* consecutive calls are at least ``1/rate`` apart (no bursts that latency could bunch up), and
* no ``qps`` calls within any ``1 + guard`` seconds (a late straggler has ``guard`` to land).

A 40001 answer means we got it wrong anyway (clock skew, another client on the account):
every caller pauses until a shared deadline, the rate drops, then it creeps back up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable


class LimiterClosed(Exception):
    """The daemon is stopping: calls that have not been sent yet are not sent."""


class RateLimiter:
    def __init__(
        self,
        qps: int,
        *,
        guard: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        cooldown: float = 1.0,
        recovery_per_second: float = 0.1,
    ) -> None:
        self._clock = clock
        self._guard = guard
        self._cooldown = cooldown
        self._recovery = recovery_per_second
        # Whose turn it is: one caller at a time computes its slot and waits for it; the
        # others queue by (priority, arrival).
        self._busy = False
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._closed = asyncio.Event()
        self._slots: deque[float] = deque()
        self._last_slot = -1e18
        self._paused_until = 0.0
        self._rate_at = clock()
        self.qps = qps
        self.rate = float(qps)
        self.calls = 0
        self.throttled = 0
        self.waiting = 0

    def reconfigure(self, qps: int) -> None:
        """Apply a new budget (config reload) without forgetting recent calls."""
        self.rate = float(qps) if self.rate >= self.qps else min(self.rate, float(qps))
        self.qps = qps
        while len(self._slots) > qps:
            self._slots.popleft()

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
        rate = self._current_rate(now)
        slot = max(now, self._last_slot + 1.0 / rate, self._paused_until)
        window = 1.0 + self._guard
        while self._slots and self._slots[0] <= slot - window:
            self._slots.popleft()
        if len(self._slots) >= self.qps:
            slot = max(slot, self._slots[len(self._slots) - self.qps] + window)
        return slot

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
            else:
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

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for this caller's slot. Callers are served in arrival order, except that
        ``priority`` callers (token refreshes, list sweeps: calls others depend on) go
        before every ordinary one still waiting."""
        self.waiting += 1
        try:
            await self._take_turn(0 if priority else 1)
            try:
                if self._closed.is_set():
                    raise LimiterClosed
                now = self._clock()
                slot = self._next_slot(now)
                self._slots.append(slot)
                self._last_slot = slot
                self.calls += 1
                delay = slot - now
                # Sleep holding the turn: the next caller's slot depends on this one.
                await self._sleep(delay)
                # A 40001 may have arrived while we slept; honour the pause.
                while self._paused_until > self._clock():
                    await self._sleep(self._paused_until - self._clock())
                # Record when we really go, which is what the next slot is spaced from.
                self._slots[-1] = self._last_slot = max(slot, self._clock())
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
        recent = sum(1 for slot in self._slots if now - horizon < slot <= now)
        return recent / (self.qps * horizon)
