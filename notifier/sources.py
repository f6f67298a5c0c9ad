"""Where watches come from: the watch file and the SQLite intake queue."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from notifier.models import WatchSpec, job_id_problem, labels_problem
from notifier.store import IntakeResult, Store
from notifier.watchfile import WatchFileError, load_watch_file


def parse_queue_row(
    job_id: object, labels: object, endpoints: object, endpoint_names: Collection[str] | None
) -> WatchSpec | str:
    """A queue row as a WatchSpec, or the reason it is rejected."""
    problem = job_id_problem(job_id)
    if problem:
        return problem
    assert isinstance(job_id, str)
    label_map: dict[str, str] = {}
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
            label_map = {str(k): str(v) for k, v in decoded.items()}
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
    return WatchSpec(job_id=job_id, labels=label_map, endpoints=names)


def take_queue(store: Store, endpoint_names: Collection[str] | None) -> IntakeResult:
    """Move every waiting queue row into the watches (rejecting bad rows with a reason)."""

    def parse(job_id: object, labels: object, endpoints: object) -> WatchSpec | str:
        return parse_queue_row(job_id, labels, endpoints, endpoint_names)

    return store.take_queue(parse)


class WatchFile:
    """Follows the watch file: re-read when its content changes, or when forced (SIGHUP).

    A broken file keeps the previous set in force; the error is reported once per content.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._digest: str | None = None
        self._error_digest: str | None = None

    def _digest_now(self) -> str:
        """A fingerprint of the file's content (or of why it cannot be read)."""
        assert self.path is not None
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"unreadable:{exc.errno}"

    def poll(
        self, store: Store, endpoint_names: Collection[str] | None, *, force: bool = False
    ) -> dict[str, Any] | None:
        """Sync the store with the file if it changed. Returns what happened, or None.

        The result has ``added``/``updated``/``removed`` counts or an ``error`` message.
        """
        if self.path is None:
            return None
        digest = self._digest_now()
        if not force and digest in (self._digest, self._error_digest):
            return None
        try:
            specs = load_watch_file(self.path, endpoint_names)
        except WatchFileError as exc:
            self._error_digest = digest
            return {"error": str(exc), "kept_previous": self._digest is not None}
        self._digest = digest
        self._error_digest = None
        added, updated, removed = store.sync_file_watches(specs)
        return {"added": added, "updated": updated, "removed": removed, "total": len(specs)}
