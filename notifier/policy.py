"""When to poll a job next: one small, pure function, so a smarter policy can replace it."""

from __future__ import annotations

from dataclasses import dataclass

from notifier.models import JobDetail


@dataclass(frozen=True)
class PollingSettings:
    min_interval: float
    max_interval: float
    give_up_after: float


def _clamp(value: float, settings: PollingSettings) -> float:
    return min(settings.max_interval, max(settings.min_interval, value))


def next_poll_delay(
    detail: JobDetail | None, errors: int, settings: PollingSettings, jitter: float = 0.5
) -> float:
    """Seconds until the next poll of an active job.

    ``detail`` is the answer just received (None when the poll failed), ``errors`` the number
    of consecutive failed polls including this one, ``jitter`` a number in [0, 1) that spreads
    retries so failed jobs do not come back in lockstep.

    Round-robin at ``min_interval``: with more jobs than budget, the most overdue go first,
    which gives every job an equal share. Failed polls back off exponentially.
    """
    if detail is None and errors > 0:
        backoff = settings.min_interval * 2 ** min(errors - 1, 16)
        return _clamp(backoff * (0.9 + 0.2 * jitter), settings)
    return _clamp(settings.min_interval, settings)
