from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from notifier.polling.ratelimit import LimiterClosed, RateLimiter


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def test_never_more_than_qps_in_any_second_and_evenly_spaced() -> None:
    limiter = RateLimiter(5)
    sent: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        sent.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(12)))
    assert len(sent) == 12
    # Lower bounds only: a slow machine can make gaps longer, never shorter.
    assert max_in_window(sent, 1.0) <= 5
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.2 - 0.01
    assert limiter.calls == 12


def test_window_rule_keeps_a_guard_for_late_arrivals() -> None:
    now = [100.0]
    limiter = RateLimiter(10, guard=0.05, clock=lambda: now[0])
    slots = []
    for _ in range(21):
        slot = limiter._next_slot(now[0])
        limiter._slots.append(slot)
        limiter._last_slot = slot
        slots.append(slot)
    # 10 calls spaced 0.1 s, the 11th waits until 1.05 s after the first.
    assert slots[9] == pytest.approx(100.9)
    assert slots[10] == pytest.approx(101.05)
    assert max_in_window(slots, 1.05 - 1e-9) <= 10
    # Sustained rate stays above 90% of the budget.
    assert (len(slots) - 1) / (slots[-1] - slots[0]) >= 9.0


async def test_throttle_pauses_everyone_and_lowers_then_recovers_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0], cooldown=1.0, recovery_per_second=0.1)
    limiter.throttle()
    assert limiter.throttled == 1
    assert limiter.rate == pytest.approx(7.0)
    assert limiter._next_slot(0.5) >= 1.0  # paused
    now[0] = 1.0 + 2.0
    assert limiter._current_rate(now[0]) == pytest.approx(9.0)
    now[0] = 10.0
    assert limiter._current_rate(now[0]) == pytest.approx(10.0)


async def test_close_releases_waiters() -> None:
    limiter = RateLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)  # let it start waiting for its slot
    limiter.close()
    with pytest.raises(LimiterClosed):
        await waiter
    with pytest.raises(LimiterClosed):
        await limiter.acquire()


def test_reconfigure_applies_new_budget() -> None:
    limiter = RateLimiter(10)
    limiter.reconfigure(4)
    assert limiter.qps == 4 and limiter.rate == 4.0
    limiter.reconfigure(20)
    assert limiter.rate == 20.0


async def test_priority_callers_go_before_waiting_ordinary_ones() -> None:
    limiter = RateLimiter(20)
    order: list[str] = []

    async def call(name: str, priority: bool = False) -> None:
        await limiter.acquire(priority=priority)
        order.append(name)

    tasks = [asyncio.create_task(call(f"o{i}")) for i in range(5)]
    await asyncio.sleep(0)  # one turn of the loop: o0 went, o1 holds the turn, o2-o4 queue
    tasks.append(asyncio.create_task(call("p", priority=True)))
    await asyncio.gather(*tasks)
    assert order == ["o0", "o1", "p", "o2", "o3", "o4"]


async def test_a_cancelled_waiter_does_not_block_the_queue() -> None:
    limiter = RateLimiter(20)
    await limiter.acquire()
    holder = asyncio.create_task(limiter.acquire())  # waits for its slot, holding the turn
    await asyncio.sleep(0)
    doomed = asyncio.create_task(limiter.acquire())
    after = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.gather(holder, after)
    assert doomed.cancelled()
    assert limiter.waiting == 0
