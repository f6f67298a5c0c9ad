"""Retry-After steps use up no retry step, within the schedule's total time."""

from __future__ import annotations

from notifier.delivery.retry import MAX_DEFERRED, MIN_RETRY_AFTER, Retry, plan_retry
from notifier.models import SendResult

SCHEDULE = [5.0, 30.0, 120.0]  # total 155 s
BUSY = SendResult(ok=False, status=503, retry_after=1.0)
FAIL = SendResult(ok=False, status=500)


def test_retry_after_is_free_while_younger_than_the_schedule_total() -> None:
    # The 10th failure, all of them 503 Retry-After: 1, 9 s after the first attempt.
    assert plan_retry(10, BUSY, SCHEDULE, deferred=9, elapsed=9.0) == Retry(1.0, deferred=True)
    # Plain failures after that still get the whole schedule, from its first step.
    assert plan_retry(11, FAIL, SCHEDULE, 0.5, deferred=10, elapsed=10.0) == Retry(5.0)
    assert plan_retry(13, FAIL, SCHEDULE, 0.5, deferred=10, elapsed=50.0) == Retry(120.0)
    assert plan_retry(14, FAIL, SCHEDULE, 0.5, deferred=10, elapsed=60.0) is None


def test_always_busy_receiver_is_dead_after_the_schedule_total() -> None:
    assert plan_retry(45, BUSY, SCHEDULE, deferred=44, elapsed=154.0) == Retry(1.0, True)
    assert plan_retry(46, BUSY, SCHEDULE, deferred=45, elapsed=155.0) is None
    # Past the total, a plain failure of a delivery that followed Retry-After is dead too.
    assert plan_retry(47, FAIL, SCHEDULE, deferred=45, elapsed=160.0) is None


def test_retry_after_zero_waits_a_second_and_free_retries_are_bounded() -> None:
    """Issue 18: ``Retry-After: 0`` every time made 10,718 POSTs in 17 s for one delivery."""
    now = SendResult(ok=False, status=503, retry_after=0.0)
    assert plan_retry(1, now, SCHEDULE) == Retry(MIN_RETRY_AFTER, deferred=True)
    # After MAX_DEFERRED free ones, each uses a step: the schedule ends after its steps.
    free = MAX_DEFERRED
    assert plan_retry(free + 1, now, SCHEDULE, deferred=free, elapsed=60.0) == Retry(1.0)
    last = free + len(SCHEDULE)
    assert plan_retry(last, now, SCHEDULE, deferred=free, elapsed=70.0) == Retry(1.0)
    assert plan_retry(last + 1, now, SCHEDULE, deferred=free, elapsed=71.0) is None
    # However the receiver answers, one delivery makes at most this many attempts.
    assert free + len(SCHEDULE) + 1 < 60


def test_a_wait_past_the_total_counts_as_a_step() -> None:
    long_wait = SendResult(ok=False, status=429, retry_after=3600.0)
    assert plan_retry(1, long_wait, SCHEDULE) == Retry(3600.0, deferred=False)
    assert plan_retry(4, long_wait, SCHEDULE) is None


def test_permanent_failures_ignore_retry_after() -> None:
    gone = SendResult(ok=False, status=410, permanent=True, retry_after=1.0)
    assert plan_retry(1, gone, SCHEDULE) is None
