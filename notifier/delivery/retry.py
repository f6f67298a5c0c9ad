"""The persistent retry schedule of a delivery: when to try again, or give up."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.models import SendResult

#: Never wait longer than this for a receiver's Retry-After.
MAX_RETRY_AFTER = 86400.0


def next_attempt_delay(
    attempts: int, result: SendResult, schedule: Sequence[float], jitter: float = 0.5
) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones, or None: dead.

    The n-th retry waits ``schedule[n-1]`` (±10% by ``jitter`` in [0, 1), so a receiver that
    comes back is not hit by every retry at once); a receiver's ``Retry-After`` replaces the
    step, because it knows best when it can take the request.
    """
    if result.ok:
        raise ValueError("a successful attempt has no retry")
    if result.permanent or attempts > len(schedule):
        return None
    if result.retry_after is not None:
        return min(max(result.retry_after, 0.0), MAX_RETRY_AFTER)
    return schedule[attempts - 1] * (0.9 + 0.2 * jitter)
