"""The watch file: a YAML list of job ids (or ``{id, kind, account, labels, endpoints}``
mappings) to watch. An item without ``kind`` is a lip-sync job; one without ``account`` is
the only account's, or the one marked default's (with several and none marked, an item must
name its account); the same id under two kinds or two accounts is two watches.

An empty file (or ``[]``, or only comments) is valid and watches nothing. Problems are collected,
not just the first, and raised together as :class:`WatchFileError` with lines like
``watch.yaml: [3].labels: ...``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier.config import ProblemsError, dotted, kind, read_yaml_file, show
from notifier.kinds import DEFAULT_KIND
from notifier.models import WatchSpec
from notifier.store import Store
from notifier.watchspec import ANY_ACCOUNT, AccountRule, parse_watch

__all__ = [
    "ITEM_KEYS",
    "WatchFile",
    "WatchFileError",
    "WatchFileSettings",
    "load_watch_file",
    "parse_watch_items",
]

#: Keys allowed in a mapping item.
ITEM_KEYS = ("id", "kind", "account", "labels", "endpoints")


class WatchFileError(ProblemsError):
    """The watch file cannot be used; ``problems`` holds one line per problem."""


def load_watch_file(
    path: str | os.PathLike[str],
    endpoint_names: Collection[str] | None = None,
    accounts: AccountRule = ANY_ACCOUNT,
) -> list[WatchSpec]:
    """Read and validate the watch file at ``path``.

    When ``endpoint_names`` is given, every ``endpoints`` entry must be one of them; every
    ``account`` must be one of ``accounts``. Raises :class:`WatchFileError`.
    """
    data = read_yaml_file(path, WatchFileError)
    return parse_watch_items(data, os.fspath(path), endpoint_names, accounts)


def parse_watch_items(
    data: object,
    source: str,
    endpoint_names: Collection[str] | None = None,
    accounts: AccountRule = ANY_ACCOUNT,
) -> list[WatchSpec]:
    """Validate already-parsed watch-file ``data`` (None means empty); see the module doc."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise WatchFileError(
            [
                f"{source}: top level must be a list of job ids or "
                f"{{id, kind, account, labels, endpoints}} mappings, got {kind(data)}"
            ]
        )
    known = None if endpoint_names is None else list(endpoint_names)
    problems: list[str] = []
    specs: list[WatchSpec] = []
    first_seen: dict[tuple[str, str, str], int] = {}
    for index, item in enumerate(data):
        item_problems: list[tuple[tuple[str | int, ...], str]] = []
        spec = _parse_item(item, known, accounts, item_problems)
        id_loc: tuple[str | int, ...] = ("id",) if isinstance(item, dict) else ()
        if spec is not None:
            # One id under two kinds or accounts is two watches; twice under one is a mistake.
            key = (spec.account, spec.kind, spec.job_id)
            if key in first_seen:
                of = "" if spec.kind == DEFAULT_KIND else f" of kind {spec.kind}"
                if isinstance(item, dict) and "account" in item:
                    of += f" on account {spec.account}"
                item_problems.append(
                    (
                        id_loc,
                        f"duplicate job id {spec.job_id!r}{of} (already listed at "
                        f"[{first_seen[key]}])",
                    )
                )
            else:
                first_seen[key] = index
                specs.append(spec)
        problems.extend(f"{source}: {dotted((index, *loc))}: {msg}" for loc, msg in item_problems)
    if problems:
        raise WatchFileError(problems)
    return specs


def _parse_item(
    item: object,
    known: list[str] | None,
    accounts: AccountRule,
    problems: list[tuple[tuple[str | int, ...], str]],
) -> WatchSpec | None:
    """One list item → WatchSpec, or None after appending (relative key, message) problems.
    The item's shape is the file's business; what it asks for is the parser's."""
    if item is None:
        problems.append(((), "empty item: expected a job id or a mapping with an 'id' key"))
        return None
    if isinstance(item, list):
        problems.append(((), "must be a job id or a mapping with an 'id' key, got list"))
        return None
    if not isinstance(item, dict):
        parsed = parse_watch(item, endpoints_configured=known, accounts=accounts)
        if isinstance(parsed, WatchSpec):
            return parsed
        # A bare id: no "id" key to name; an account it needs is said as the key to add.
        problems.extend((p.loc if p.loc == ("account",) else p.loc[1:], p.msg) for p in parsed)
        return None
    start = len(problems)
    for key in item:
        if key not in ITEM_KEYS:
            name = key if isinstance(key, str) else show(key)
            problems.append(((name,), f"unknown key (allowed: {', '.join(ITEM_KEYS)})"))
    if "id" not in item:
        problems.append((("id",), "required key is missing"))
    endpoints = item.get("endpoints")
    if isinstance(endpoints, str):  # the file's shorthand for a list of one
        endpoints = [endpoints]
    elif endpoints == []:
        problems.append(
            (
                ("endpoints",),
                "must list at least one endpoint name (leave it out to notify every endpoint)",
            )
        )
        endpoints = None
    parsed = parse_watch(
        item.get("id", ""),
        item.get("labels"),
        endpoints,
        endpoints_configured=known,
        kind=item.get("kind"),
        account=item.get("account"),
        accounts=accounts,
    )
    if isinstance(parsed, WatchSpec):
        return parsed if len(problems) == start else None
    missing = "id" not in item  # said once already: "required key is missing"
    problems.extend((p.loc, p.msg) for p in parsed if not (missing and p.loc == ("id",)))
    return None


@dataclass(frozen=True)
class WatchFileSettings:
    """``watch.file``: the file to follow (None: no watch file), frozen for one reload."""

    path: Path | None


class WatchFile:
    """Follows the watch file: re-read when its content changes, or when forced (SIGHUP).

    A broken file keeps the previous set in force; the error is reported once per content.
    With ``node`` (several nodes on one state) the file is that node's listing (see
    :meth:`Store.sync_file_watches`): each poll keeps the listing alive, and lists the file
    again at once if another node dropped it as stale.
    """

    def __init__(self, settings: WatchFileSettings, node: str | None = None) -> None:
        self.path = settings.path
        self.node = node
        self._listed = False
        self._digest: str | None = None
        self._error_digest: str | None = None

    def configure(self, settings: WatchFileSettings) -> None:
        """Follow another file from the next poll on (config reload)."""
        self.path = settings.path

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
        self,
        store: Store,
        endpoint_names: Collection[str] | None,
        *,
        force: bool = False,
        accounts: AccountRule = ANY_ACCOUNT,
    ) -> dict[str, Any] | None:
        """Sync the store with the file if it changed. Returns what happened, or None.

        The result has ``added``/``updated``/``removed`` counts or an ``error`` message.
        ``accounts``: the configured ones, which items name (a reload that changes them
        comes with ``force``).
        """
        if self.node is not None and self._listed and not store.keep_file_listing(self.node):
            force = True  # dropped while this node was not seen (a long pause): list again
        if self.path is None:
            return None
        digest = self._digest_now()
        if not force and digest in (self._digest, self._error_digest):
            return None
        try:
            specs = load_watch_file(self.path, endpoint_names, accounts)
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
