"""The SQLite intake queue: rows any program may INSERT, taken into watches (bad rows kept
with the reason they were rejected)."""

from __future__ import annotations

import json
from collections.abc import Collection

from notifier.models import WatchSpec, job_id_problem, label_map, labels_problem
from notifier.store import IntakeResult, Store


def parse_queue_row(
    job_id: object, labels: object, endpoints: object, endpoint_names: Collection[str] | None
) -> WatchSpec | str:
    """A queue row as a WatchSpec, or the reason it is rejected."""
    problem = job_id_problem(job_id)
    if problem:
        return problem
    assert isinstance(job_id, str)
    labels_stored: dict[str, str] = {}
    if labels not in (None, ""):
        try:
            decoded = json.loads(labels) if isinstance(labels, str | bytes) else labels
        except ValueError:
            return 'labels is not valid JSON (expected an object like {"k": "v"})'
        if decoded is not None:
            problem = labels_problem(decoded)
            if problem:
                return problem
            assert isinstance(decoded, dict)
            labels_stored = label_map(decoded)
    names: tuple[str, ...] | None = None
    if endpoints not in (None, ""):
        try:
            decoded = json.loads(endpoints) if isinstance(endpoints, str | bytes) else endpoints
        except ValueError:
            return "endpoints is not valid JSON (expected an array of endpoint names)"
        if decoded is not None:
            if not isinstance(decoded, list) or not all(isinstance(n, str) for n in decoded):
                return "endpoints must be a JSON array of endpoint names"
            unknown = [n for n in decoded if endpoint_names is not None and n not in endpoint_names]
            if unknown:
                return (
                    f"unknown endpoint(s) {', '.join(unknown)} (configured: "
                    + (", ".join(sorted(endpoint_names or [])) or "none")
                    + ")"
                )
            names = tuple(decoded)
    return WatchSpec(job_id=job_id, labels=labels_stored, endpoints=names)


def take_queue(store: Store, endpoint_names: Collection[str] | None) -> IntakeResult:
    """Move every waiting queue row into the watches (rejecting bad rows with a reason)."""

    def parse(job_id: object, labels: object, endpoints: object) -> WatchSpec | str:
        # Whatever one row holds (JSON nested 100k deep, bytes that are no text), it is that
        # row that is rejected, with its reason; the others go on.
        try:
            return parse_queue_row(job_id, labels, endpoints, endpoint_names)
        except RecursionError:
            return "cannot read this row: its JSON is nested too deeply"
        except Exception as exc:
            return f"cannot read this row: {type(exc).__name__}"

    return store.take_queue(parse)
