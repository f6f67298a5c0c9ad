"""The persistent retry schedule of a delivery: when to try again, or give up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notifier.models import SendResult

#: Never wait longer than this for a receiver's Retry-After…
MAX_RETRY_AFTER = 86400.0
#: …nor less: ``Retry-After: 0`` answered every time made thousands of attempts a second.
MIN_RETRY_AFTER = 1.0
#: At most this many attempts follow Retry-After without using up a step; later ones count
#: as steps (with the receiver's wait), so the schedule still ends.
MAX_DEFERRED = 50


@dataclass(frozen=True)
class Retry:
    """When to try again, and whether this retry follows Retry-After without using a step."""

    delay: float
    deferred: bool = False


def plan_retry(
    attempts: int,
    result: SendResult,
    schedule: Sequence[float],
    jitter: float = 0.5,
    *,
    deferred: int = 0,
    elapsed: float = 0.0,
) -> Retry | None:
    """The retry after ``attempts`` failed attempts (this one included), or None: dead.

    The n-th counted retry waits ``schedule[n-1]`` (±10% by ``jitter`` in [0, 1), so a
    receiver that comes back is not hit by every retry at once). A receiver's
    ``Retry-After`` knows best when it can take the request (a deploy, a rate limit): its
    wait replaces the step and uses up no step, as long as the retry happens within
    ``sum(schedule)`` of the first attempt (``elapsed`` ago); a longer wait counts as a
    step. ``deferred`` attempts so far used no step; once such a delivery is older than
    ``sum(schedule)`` it is dead, so a receiver that always answers Retry-After cannot keep
    it alive forever.
    """
    if result.ok:
        raise ValueError("a successful attempt has no retry")
    if result.permanent:
        return None
    total = sum(schedule)
    if deferred and elapsed >= total:
        return None
    wait = None
    if result.retry_after is not None:
        wait = min(max(result.retry_after, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
        if elapsed + wait <= total and deferred < MAX_DEFERRED:
            return Retry(wait, deferred=True)
    steps = attempts - deferred
    if steps > len(schedule):
        return None
    if wait is not None:
        return Retry(wait)
    return Retry(schedule[steps - 1] * (0.9 + 0.2 * jitter))


def next_attempt_delay(
    attempts: int,
    result: SendResult,
    schedule: Sequence[float],
    jitter: float = 0.5,
    *,
    deferred: int = 0,
    elapsed: float = 0.0,
) -> float | None:
    """Seconds until the next attempt (see :func:`plan_retry`), or None: dead."""
    retry = plan_retry(attempts, result, schedule, jitter, deferred=deferred, elapsed=elapsed)
    return None if retry is None else retry.delay
