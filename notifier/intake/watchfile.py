"""The watch file: a YAML list of job ids (or ``{id, labels, endpoints}`` mappings) to watch.

An empty file (or ``[]``, or only comments) is valid and watches nothing. Problems are collected,
not just the first, and raised together as :class:`WatchFileError` with lines like
``watch.yaml: [3].labels: ...``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from notifier.config import ProblemsError, dotted, kind, read_yaml_file, show
from notifier.models import WatchSpec, job_id_problem, label_map, labels_problem
from notifier.store import Store

__all__ = ["ITEM_KEYS", "WatchFile", "WatchFileError", "load_watch_file", "parse_watch_items"]

#: Keys allowed in a mapping item.
ITEM_KEYS = ("id", "labels", "endpoints")


class WatchFileError(ProblemsError):
    """The watch file cannot be used; ``problems`` holds one line per problem."""


def load_watch_file(
    path: str | os.PathLike[str], endpoint_names: Collection[str] | None = None
) -> list[WatchSpec]:
    """Read and validate the watch file at ``path``.

    When ``endpoint_names`` is given, every ``endpoints`` entry must be one of them.
    Raises :class:`WatchFileError`.
    """
    data = read_yaml_file(path, WatchFileError)
    return parse_watch_items(data, os.fspath(path), endpoint_names)


def parse_watch_items(
    data: object, source: str, endpoint_names: Collection[str] | None = None
) -> list[WatchSpec]:
    """Validate already-parsed watch-file ``data`` (None means empty); see the module doc."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise WatchFileError(
            [
                f"{source}: top level must be a list of job ids or "
                f"{{id, labels, endpoints}} mappings, got {kind(data)}"
            ]
        )
    known = None if endpoint_names is None else list(endpoint_names)
    problems: list[str] = []
    specs: list[WatchSpec] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(data):
        item_problems: list[tuple[tuple[str | int, ...], str]] = []
        spec = _parse_item(item, known, item_problems)
        id_loc: tuple[str | int, ...] = ("id",) if isinstance(item, dict) else ()
        if spec is not None:
            if spec.job_id in first_seen:
                item_problems.append(
                    (
                        id_loc,
                        f"duplicate job id {spec.job_id!r} (already listed at "
                        f"[{first_seen[spec.job_id]}])",
                    )
                )
            else:
                first_seen[spec.job_id] = index
                specs.append(spec)
        problems.extend(f"{source}: {dotted((index, *loc))}: {msg}" for loc, msg in item_problems)
    if problems:
        raise WatchFileError(problems)
    return specs


def _parse_item(
    item: object,
    known: list[str] | None,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> WatchSpec | None:
    """One list item → WatchSpec, or None after appending (relative key, message) problems."""
    if isinstance(item, dict):
        return _parse_mapping(item, known, problems)
    problem = _id_problem(item)
    if problem is not None:
        problems.append(((), problem))
        return None
    assert isinstance(item, str)
    return WatchSpec(job_id=item)


def _id_problem(job_id: object) -> str | None:
    if job_id is None:
        return "empty item: expected a job id or a mapping with an 'id' key"
    if isinstance(job_id, int | float) and not isinstance(job_id, bool):
        return (
            f"job id must be a string, got {kind(job_id)} {show(job_id)}; "
            "quote ids that look like numbers"
        )
    if isinstance(job_id, list):
        return "must be a job id or a mapping with an 'id' key, got list"
    return job_id_problem(job_id)


def _parse_mapping(
    item: dict[object, object],
    known: list[str] | None,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> WatchSpec | None:
    start = len(problems)
    for key in item:
        if key not in ITEM_KEYS:
            name = key if isinstance(key, str) else show(key)
            problems.append(((name,), f"unknown key (allowed: {', '.join(ITEM_KEYS)})"))

    job_id = item.get("id")
    if "id" not in item:
        problems.append((("id",), "required key is missing"))
    else:
        problem = _id_problem(job_id)
        if problem is not None:
            problems.append((("id",), problem))

    labels: dict[str, str] = {}
    raw_labels = item.get("labels")
    if raw_labels is not None:
        problem = labels_problem(raw_labels)
        if problem is not None:
            problems.append((("labels",), problem))
        else:
            assert isinstance(raw_labels, dict)
            labels = label_map(raw_labels)

    endpoints: tuple[str, ...] | None = None
    raw_endpoints = item.get("endpoints")
    if raw_endpoints is not None:
        endpoints = _parse_endpoints(raw_endpoints, known, problems)

    if len(problems) > start:
        return None
    assert isinstance(job_id, str)
    return WatchSpec(job_id=job_id, labels=labels, endpoints=endpoints)


def _parse_endpoints(
    raw: object,
    known: list[str] | None,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        problems.append((("endpoints",), f"must be a list of endpoint names, got {kind(raw)}"))
        return None
    if not raw:
        problems.append(
            (
                ("endpoints",),
                "must list at least one endpoint name (leave it out to notify every endpoint)",
            )
        )
        return None
    names: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            problems.append((("endpoints", i), f"must be an endpoint name, got {kind(name)}"))
        elif known is not None and name not in known:
            configured = ", ".join(known) if known else "none are configured"
            problems.append(
                (("endpoints", i), f"unknown endpoint {show(name)} (configured: {configured})")
            )
        elif name not in names:
            names.append(name)
    return tuple(names)


class WatchFile:
    """Follows the watch file: re-read when its content changes, or when forced (SIGHUP).

    A broken file keeps the previous set in force; the error is reported once per content.
    With ``node`` (several nodes on one state) the file is that node's listing (see
    :meth:`Store.sync_file_watches`): each poll keeps the listing alive, and lists the file
    again at once if another node dropped it as stale.
    """

    def __init__(self, path: Path | None, node: str | None = None) -> None:
        self.path = path
        self.node = node
        self._listed = False
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
        if self.node is not None and self._listed and not store.keep_file_listing(self.node):
            force = True  # dropped while this node was not seen (a long pause): list again
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
        # Remember the content only once the store has it: a sync that fails (a state file
        # that cannot be written) is tried again at the next poll, not taken as done.
        added, updated, removed = store.sync_file_watches(specs, self.node)
        self._listed = self.node is not None
        self._digest = digest
        self._error_digest = None
        return {"added": added, "updated": updated, "removed": removed, "total": len(specs)}
