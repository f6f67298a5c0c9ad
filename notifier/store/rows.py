"""What the store hands out: plain rows, no SQL."""

from __future__ import annotations

from dataclasses import dataclass

from notifier.models import Event, JobMemory


@dataclass(frozen=True)
class WatchRow:
    """What the poller needs to know about one active watch."""

    job_id: str
    labels: dict[str, str]
    endpoints: tuple[str, ...] | None
    status: int | None
    progress: int | None
    create_time: int | None
    added_at: float
    last_poll_at: float | None
    next_poll_at: float
    polls: int
    errors: int
    poll_key: float
    first_running_at: float | None
    first_running_progress: int | None
    last_queued_at: float | None
    misses: int
    predicted_at: float | None

    def memory(self) -> JobMemory:
        """What the polling policy remembers of this job."""
        return JobMemory(
            added_at=self.added_at,
            create_time=self.create_time,
            last_poll_at=self.last_poll_at,
            last_progress=self.progress,
            first_running_at=self.first_running_at,
            first_running_progress=self.first_running_progress,
            last_queued_at=self.last_queued_at,
            misses=self.misses,
            predicted_at=self.predicted_at,
        )


@dataclass(frozen=True)
class DueDelivery:
    id: int
    attempts: int
    event: Event
    #: Which reset of the row this is; a result is written only to the same generation.
    generation: int | None = None
    #: Failed attempts so far that followed a Retry-After (they use up no retry step).
    deferred: int = 0
    first_attempt_at: float | None = None


#: ``last_error`` of deliveries parked because the daemon does not run their endpoint.
ENDPOINT_REMOVED = "endpoint removed"
ENDPOINT_NOT_CONFIGURED = "endpoint not configured"


@dataclass(frozen=True)
class IntakeResult:
    added: int
    updated: int
    rejected: list[tuple[int, str]]
