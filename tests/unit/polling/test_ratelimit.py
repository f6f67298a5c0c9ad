"""The limiter through its public ``acquire()``, on an event loop with virtual time: every
sleep passes at once and in order, so the timings below are exact and no load can move them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from notifier.polling.ratelimit import LimiterClosed, LimiterSettings, RateLimiter
from tests.kit import run_virtual

Clock = Callable[[], float]


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def send(limiter: RateLimiter, clock: Clock, n: int, **kw: bool) -> list[float]:
    """``n`` concurrent callers; when each was let through, in order."""
    sent: list[float] = []

    async def call() -> None:
        await limiter.acquire(**kw)
        sent.append(clock())

    await asyncio.gather(*(call() for _ in range(n)))
    return sent


def test_never_more_than_qps_in_any_second_and_evenly_spaced() -> None:
    async def main(clock: Clock) -> list[float]:
        return await send(RateLimiter(LimiterSettings(5), clock=clock), clock, 12)

    sent = run_virtual(main)
    start = sent[0]
    assert [round(t - start, 6) for t in sent[:5]] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert max_in_window(sent, 1.0) <= 5
    assert min(b - a for a, b in itertools.pairwise(sent)) == pytest.approx(0.2)


def test_window_rule_keeps_a_guard_for_late_arrivals() -> None:
    async def main(clock: Clock) -> tuple[list[float], int]:
        limiter = RateLimiter(LimiterSettings(10), guard=0.05, clock=clock)
        sent = await send(limiter, clock, 21)
        return sent, limiter.calls

    sent, calls = run_virtual(main)
    offsets = [t - sent[0] for t in sent]
    # 10 calls spaced 0.1 s, the 11th waits until 1.05 s after the first.
    assert offsets[9] == pytest.approx(0.9)
    assert offsets[10] == pytest.approx(1.05)
    assert max_in_window(sent, 1.05 - 1e-9) <= 10
    # Sustained rate stays above 90% of the budget.
    assert (len(sent) - 1) / offsets[-1] >= 9.0
    assert calls == 21


def test_throttle_pauses_callers_already_waiting_then_rate_recovers() -> None:
    """A 40001 lands while callers wait for slots computed before it: each of them must
    still wait out the pause (the re-check after the sleep), then go at the lowered rate."""

    async def main(clock: Clock) -> tuple[float, float, list[float], RateLimiter]:
        limiter = RateLimiter(
            LimiterSettings(10), clock=clock, cooldown=1.0, recovery_per_second=0.1
        )
        start = clock()
        waiting = asyncio.ensure_future(send(limiter, clock, 6))
        await asyncio.sleep(0.15)  # two have gone; the third sleeps until its slot at 0.2
        throttled_at = clock()
        limiter.throttle()
        sent = await waiting
        return start, throttled_at, sent, limiter

    start, throttled_at, sent, limiter = run_virtual(main)
    assert [round(t - start, 6) for t in sent[:2]] == [0.0, 0.1]
    after = sent[2:]
    assert min(after) >= throttled_at + 1.0  # nobody went during the pause
    assert limiter.throttled == 1
    # Lowered to 70%, recovering by 10% of the budget per second from the end of the pause.
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert gaps[0] == pytest.approx(1 / 7.0)
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps  # creeping back up
    assert all(gap > 0.1 for gap in gaps), gaps  # ... but not yet at the full rate
    assert limiter.rate < 10.0


def test_rate_recovers_fully_after_a_quiet_spell() -> None:
    async def main(clock: Clock) -> tuple[list[float], list[float]]:
        limiter = RateLimiter(
            LimiterSettings(10), clock=clock, cooldown=1.0, recovery_per_second=0.1
        )
        limiter.throttle()
        slow = await send(limiter, clock, 3)
        await asyncio.sleep(4.0)  # 7 + 4 s x 1/s: back to the full 10
        fast = await send(limiter, clock, 3)
        return slow, fast

    slow, fast = run_virtual(main)
    slow_gaps = [b - a for a, b in itertools.pairwise(slow)]
    fast_gaps = [b - a for a, b in itertools.pairwise(fast)]
    assert min(slow_gaps) > 0.1 + 1e-6  # still below the full rate just after the pause
    assert fast_gaps == pytest.approx([0.1, 0.1])


def test_lowering_qps_while_calls_wait_applies_to_the_waiting_calls() -> None:
    async def main(clock: Clock) -> tuple[float, list[float]]:
        limiter = RateLimiter(LimiterSettings(10), clock=clock)
        waiting = asyncio.ensure_future(send(limiter, clock, 12))
        await asyncio.sleep(0.25)  # three have gone, the fourth sleeps until 0.3
        changed_at = clock()
        limiter.configure(LimiterSettings(4))
        return changed_at, await waiting

    changed_at, sent = run_virtual(main)
    later = [t for t in sent if t >= changed_at]
    # The vendor now allows 4 a second: no window after the change holds more, counting
    # the calls that went just before it too.
    for start in later:
        assert sum(1 for t in sent if start - 1.0 < t <= start) <= 4, sent
    gaps = [b - a for a, b in itertools.pairwise(later[1:])]
    assert min(gaps) >= 0.25 - 1e-9


def test_close_releases_waiters_at_once() -> None:
    async def main(clock: Clock) -> float:
        limiter = RateLimiter(LimiterSettings(1), clock=clock)
        await limiter.acquire()
        start = clock()
        waiter = asyncio.ensure_future(limiter.acquire())
        queued = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.1)  # one waits for its slot, one for its turn
        limiter.close()
        for task in (waiter, queued):
            with pytest.raises(LimiterClosed):
                await task
        with pytest.raises(LimiterClosed):
            await limiter.acquire()
        assert limiter.waiting == 0
        return clock() - start

    assert run_virtual(main) == pytest.approx(0.1)  # not the 1 s slot


def test_reconfigure_applies_new_budget() -> None:
    limiter = RateLimiter(LimiterSettings(10))
    limiter.configure(LimiterSettings(4))
    assert limiter.qps == 4 and limiter.rate == 4.0
    limiter.configure(LimiterSettings(20))
    assert limiter.rate == 20.0


def test_priority_callers_go_before_waiting_ordinary_ones() -> None:
    async def main(clock: Clock) -> list[str]:
        limiter = RateLimiter(LimiterSettings(20), clock=clock)
        order: list[str] = []

        async def call(name: str, priority: bool = False) -> None:
            await limiter.acquire(priority=priority)
            order.append(name)

        tasks = [asyncio.ensure_future(call(f"o{i}")) for i in range(5)]
        await asyncio.sleep(0)  # o0 went, o1 holds the turn, o2-o4 queue
        tasks.append(asyncio.ensure_future(call("p", priority=True)))
        await asyncio.gather(*tasks)
        return order

    assert run_virtual(main) == ["o0", "o1", "p", "o2", "o3", "o4"]


def test_a_cancelled_waiter_does_not_block_the_queue() -> None:
    async def main(clock: Clock) -> None:
        limiter = RateLimiter(LimiterSettings(20), clock=clock)
        await limiter.acquire()
        holder = asyncio.ensure_future(limiter.acquire())  # waits for its slot, holding the turn
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(limiter.acquire())
        after = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.gather(holder, after)
        assert doomed.cancelled()
        assert limiter.waiting == 0
        assert limiter.calls == 3

    run_virtual(main)


def test_a_waiter_cancelled_while_sleeping_passes_the_turn_on() -> None:
    async def main(clock: Clock) -> float:
        limiter = RateLimiter(LimiterSettings(2), clock=clock)
        await limiter.acquire()
        sleeper = asyncio.ensure_future(limiter.acquire())  # sleeps 0.5 s holding the turn
        after = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.1)
        sleeper.cancel()
        start = clock()
        await after
        return clock() - start

    assert run_virtual(main) <= 1.0


def test_a_waiter_cancelled_as_the_turn_passes_it_leaves_the_limiter_working() -> None:
    """A bounded wait (the gateway's ``max_wait``) expiring while the turn holder passes the
    turn: the holder's pass drops the cancelled waiter's entry, and the waiter must not fail
    on removing it again (it used to raise ValueError out of the caller's ``acquire``).
    The exact interleaving is made by hand, through the turn's own methods."""

    async def main(clock: Clock) -> None:
        limiter = RateLimiter(LimiterSettings(10), clock=clock)
        await limiter._take_turn(3)  # this test holds the turn
        waiter = asyncio.create_task(limiter._take_turn(3))
        await asyncio.sleep(0)  # queued behind us
        waiter.cancel()
        limiter._pass_turn()  # before the waiter runs: its cancelled entry is dropped
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(limiter.acquire(), 5)  # nobody holds the turn now

    run_virtual(main)
