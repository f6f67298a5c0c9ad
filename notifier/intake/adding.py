"""Adding watches by request: the rules of ``watch add``, once, for the CLI and the HTTP API.

Both check the same things (ids, labels, endpoint names against the config), merge into a
known watch the same way and write through the documented queue, so a job added by either
looks the same in ``watch list`` and reaches the same endpoints.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier.intake.queue import take_queue
from notifier.models import WatchSpec, WatchState, job_id_problem, labels_problem
from notifier.store import Store


class LabelsTooMany(ValueError):
    """Labels merged into a known watch would pass the limits (nothing was written)."""


#: A finished watch that ``reopen`` may watch again (a success is final: one event per job).
REOPENABLE = (WatchState.EXPIRED.value, WatchState.FAILED.value, WatchState.REJECTED.value)


@dataclass
class AddOutcome:
    """What one request came to, per id where it differs from "watched"."""

    #: The distinct ids asked for, in the order given.
    ids: list[str]
    #: Watches created by this request.
    added: int = 0
    #: Ids not watched, finished already (one event per job): their stored summary.
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Finished ids watched again (``reopen``), with the state they had.
    reopened: dict[str, str] = field(default_factory=dict)
    #: Ids that were watched already (labels merged).
    known: list[str] = field(default_factory=list)

    @property
    def watched(self) -> int:
        return len(self.ids) - len(self.finished)


def ids_problem(ids: Sequence[object]) -> str | None:
    """Why one of ``ids`` is not a job id, or None."""
    for job_id in ids:
        problem = job_id_problem(job_id)
        if problem:
            return problem
    return None


def endpoints_problem(names: Sequence[str], configured: Collection[str]) -> str | None:
    """Why ``names`` cannot be the endpoints of a watch (an unknown name), or None."""
    unknown = [n for n in names if n not in configured]
    if unknown:
        return (
            f"unknown endpoint {', '.join(unknown)} (configured: {', '.join(configured) or 'none'})"
        )
    return None


def add_watches(
    store: Store,
    ids: Sequence[str],
    labels: Mapping[str, str],
    endpoints: Sequence[str] | None,
    endpoint_names: Collection[str],
    *,
    reopen: bool = False,
) -> AddOutcome:
    """Watch ``ids`` (already checked): new ones are created, known ones get ``labels`` merged
    (given ones win) and ``endpoints`` replaced when given; finished ones stay finished unless
    ``reopen`` and they expired, failed or were rejected.

    :class:`LabelsTooMany` when a known watch's merged labels would pass the limits.

    One transaction: the rows go through the queue (as any program's would) and the queue is
    taken at once, so the watches exist when this returns.
    """
    wanted = tuple(dict.fromkeys(endpoints)) if endpoints is not None else None
    outcome = AddOutcome(list(dict.fromkeys(ids)))
    with store.transaction():
        specs = []
        for job_id in outcome.ids:
            known = store.watch_summary(job_id)
            if known is None:
                specs.append(WatchSpec(job_id, dict(labels), wanted))
                continue
            merged = {**known["labels"], **labels}
            problem = labels_problem(merged)
            if problem:  # raised inside the transaction: nothing of this request is kept
                raise LabelsTooMany(f"{job_id}: with the labels it has, {problem}")
            keep = tuple(known["endpoints"]) if known["endpoints"] is not None else None
            specs.append(WatchSpec(job_id, merged, wanted if wanted is not None else keep))
            if known["state"] == WatchState.ACTIVE.value:
                outcome.known.append(job_id)
            elif reopen and known["state"] in REOPENABLE:
                store.reopen_watch(job_id)
                outcome.reopened[job_id] = known["state"]
            else:
                outcome.finished[job_id] = known
        store.enqueue(specs)
        # Taken in the same transaction: the watches are listed right after, and a daemon
        # that has not loaded an endpoint named here (config edited, no reload yet) never
        # sees the row to reject it; its deliveries wait, parked, until it runs that endpoint.
        outcome.added = take_queue(store, endpoint_names).added
    return outcome


def watch_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored watch as a row of ``watch list --json`` (and ``GET /v1/watches/{id}``)."""
    row["seen"] = row["polls"]
    return row


def find_watch(store: Store, job_id: str) -> dict[str, Any] | None:
    rows = store.list_filtered("watches", job=job_id, limit=1)
    return watch_row(rows[0]) if rows else None
