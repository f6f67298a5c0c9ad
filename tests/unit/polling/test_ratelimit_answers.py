"""``RateLimiter.call()``: a call counts until one second after its answer, so however late
calls land between their admission and their answer, no vendor second gets more than
``qps`` of them (virtual time: exact, no load can move it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from notifier.polling.ratelimit import LimiterClosed, LimiterSettings, RateLimiter
from tests.kit import run_virtual

Clock = Callable[[], float]

#: Round trips: one call stalls for almost a second (a busy loop, a slow link) while the
#: next twenty go through at once; then again.
LATENCIES = [0.98] + [0.01, 0.02] * 9 + [0.01]


def most_in_a_second(times: list[float]) -> int:
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


async def traffic(
    limiter: RateLimiter, clock: Clock, n: int, *, answered: bool
) -> tuple[list[float], list[float]]:
    """``n`` concurrent calls with the latencies above; when each was admitted and when
    its answer came. A call reaches the vendor somewhere in between."""
    admitted: list[float] = []
    answers: list[float] = []

    async def one(i: int) -> None:
        if answered:
            async with limiter.call():
                admitted.append(clock())
                await asyncio.sleep(LATENCIES[i % len(LATENCIES)])
        else:
            await limiter.acquire()
            admitted.append(clock())
            await asyncio.sleep(LATENCIES[i % len(LATENCIES)])
        answers.append(clock())

    await asyncio.gather(*(one(i) for i in range(n)))
    return admitted, answers


def test_late_arrivals_never_make_more_than_qps_in_a_second() -> None:
    def run(answered: bool) -> tuple[list[float], list[float]]:
        async def main(clock: Clock) -> tuple[list[float], list[float]]:
            return await traffic(
                RateLimiter(LimiterSettings(10), clock=clock), clock, 60, answered=answered
            )

        return run_virtual(main)

    admitted, answers = run(answered=True)
    # The worst case for the vendor's count: every call lands as late as it could.
    assert most_in_a_second(answers) <= 10
    assert most_in_a_second(admitted) <= 10
    # Counting calls from admission only (a bare acquire, the old rule) lets the slow ones
    # bunch up with the next second's: this is what the answer rule is for.
    _admitted, late = run(answered=False)
    assert most_in_a_second(late) > 10


def test_a_backlog_runs_at_qps_over_one_plus_the_round_trip() -> None:
    async def main(clock: Clock) -> list[float]:
        limiter = RateLimiter(LimiterSettings(10), clock=clock)
        admitted: list[float] = []

        async def one() -> None:
            async with limiter.call():
                admitted.append(clock())
                await asyncio.sleep(0.05)

        await asyncio.gather(*(one() for _ in range(41)))
        return admitted

    admitted = run_virtual(main)
    rate = (len(admitted) - 1) / (admitted[-1] - admitted[0])
    assert rate == pytest.approx(10 / 1.05, rel=0.03)
    assert rate >= 9.0


def test_close_releases_a_caller_waiting_for_answers() -> None:
    async def main(clock: Clock) -> tuple[type[BaseException] | None, int]:
        limiter = RateLimiter(LimiterSettings(2), clock=clock)
        stuck = asyncio.Event()

        async def never_answered() -> None:
            async with limiter.call():
                await stuck.wait()

        holders = [asyncio.ensure_future(never_answered()) for _ in range(2)]
        await asyncio.sleep(0.6)  # both admitted, both in flight
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(5.0)  # in flight for seconds: the third must still wait
        assert not waiter.done()
        limiter.close()
        outcome = None
        try:
            await waiter
        except LimiterClosed as exc:
            outcome = type(exc)
        stuck.set()
        await asyncio.gather(*holders)
        return outcome, limiter.calls

    outcome, calls = run_virtual(main)
    assert outcome is LimiterClosed
    assert calls == 2


def test_a_call_cancelled_before_it_went_takes_no_place() -> None:
    async def main(clock: Clock) -> tuple[float, int]:
        limiter = RateLimiter(LimiterSettings(1), clock=clock)
        start = clock()
        async with limiter.call():
            pass
        doomed = asyncio.ensure_future(limiter.acquire())  # waits for its slot at 1.0
        await asyncio.sleep(0.5)
        doomed.cancel()
        await limiter.acquire()
        return clock() - start, limiter.calls

    went_at, calls = run_virtual(main)
    # The slot the cancelled one never used is the next caller's.
    assert went_at == pytest.approx(1.0, abs=1e-6)
    assert calls == 2
