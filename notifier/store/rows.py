"""What the store hands out: rows as typed values, decoded from either backend's rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from notifier.kinds import DEFAULT_KIND, Phase
from notifier.models import DEFAULT_ACCOUNT, Event, JobMemory

if TYPE_CHECKING:
    from notifier.store.backend import Row


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
    #: How often the watch was reopened: part of its next event's id (a new one per reopen).
    reopens: int = 0
    kind: str = DEFAULT_KIND
    #: The phase last seen (None: never answered).
    phase: Phase | None = None
    #: The vendor account it belongs to (its lane polls it).
    account: str = DEFAULT_ACCOUNT

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
class Observation:
    """A watched job's last answer as the vendor sent it (the gateway answers from it)."""

    job_id: str
    #: The watch's state: active, succeeded, failed, expired or rejected.
    state: str
    status: int | None
    #: The vendor's ``data`` object; None when not recorded (or not readable).
    data: dict[str, Any] | None
    #: When it was recorded (the store's clock); None before the first answer.
    observed_at: float | None
    kind: str = DEFAULT_KIND
    phase: Phase | None = None


def observation_from_row(row: Row) -> Observation:
    data: Any = None
    if row["last_data"] is not None:
        try:
            data = json.loads(row["last_data"])
        except ValueError:  # written by another program: unreadable is unknown
            data = None
    return Observation(
        job_id=row["job_id"],
        state=row["state"],
        status=row["status"],
        data=data if isinstance(data, dict) else None,
        observed_at=None if row["observed_at"] is None else float(row["observed_at"]),
        kind=row["kind"],
        phase=stored_phase(row["phase"]),
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
    #: The claim this node holds on the row (``claim_token``); None when not claimed.
    claim: int | None = None
    #: Seconds the claim had left when the database granted it (on the database's clock).
    claim_left: float | None = None


#: ``last_error`` of deliveries parked because the daemon does not run their endpoint.
ENDPOINT_REMOVED = "endpoint removed"
ENDPOINT_NOT_CONFIGURED = "endpoint not configured"


@dataclass(frozen=True)
class IntakeResult:
    added: int
    updated: int
    rejected: list[tuple[int, str]]


#: The longest ``last_data`` kept (a vendor answer is about 1 KB): a larger one is not kept.
MAX_LAST_DATA = 64 * 1024


def dump_data(raw: Mapping[str, Any] | None) -> str | None:
    """The JSON of a vendor ``data`` object for ``watches.last_data``; None when there is
    none, it cannot be written as JSON or it is too large: the recording of the answer
    itself must not fail for it."""
    if raw is None:
        return None
    try:
        text = json.dumps(dict(raw), ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text) <= MAX_LAST_DATA else None


def dump_endpoints(endpoints: Sequence[str] | None) -> str | None:
    return None if endpoints is None else json.dumps(list(endpoints))


def event_from_row(row: Row) -> Event:
    return Event(
        row["event_id"],
        row["job_id"],
        row["type"],
        row["created_at"],
        row["body"],
        row["last_seen_running_at"],
        row["account"],
    )


def due_from_row(row: Row, claim: int | None = None, left: float | None = None) -> DueDelivery:
    return DueDelivery(
        row["id"],
        row["attempts"],
        event_from_row(row),
        row["generation"],
        row["deferred"],
        row["first_attempt_at"],
        claim,
        left,
    )


def watch_from_row(row: Row) -> WatchRow:
    endpoints = row["endpoints"]
    return WatchRow(
        job_id=row["job_id"],
        labels=json.loads(row["labels"]),
        endpoints=None if endpoints is None else tuple(json.loads(endpoints)),
        status=row["status"],
        progress=row["progress"],
        create_time=row["create_time"],
        added_at=row["added_at"],
        last_poll_at=row["last_poll_at"],
        next_poll_at=row["next_poll_at"],
        polls=row["polls"],
        errors=row["errors"],
        poll_key=row["poll_key"],
        first_running_at=row["first_running_at"],
        first_running_progress=row["first_running_progress"],
        last_queued_at=row["last_queued_at"],
        misses=row["misses"],
        predicted_at=row["predicted_at"],
        reopens=row["reopens"],
        kind=row["kind"],
        phase=stored_phase(row["phase"]),
        account=row["account"],
    )


def stored_phase(value: object) -> Phase | None:
    """The ``phase`` column as a Phase; None when unknown (never answered, or a value
    another program wrote)."""
    try:
        return Phase(value) if isinstance(value, str) else None
    except ValueError:
        return None
