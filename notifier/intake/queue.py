"""The SQLite intake queue: rows any program may INSERT, taken into watches (bad rows kept
with the reason they were rejected).

A row's ``account`` column is ``default`` when its writer left it out: with a config that
has no account of that name it means "none named", so the row gets the account marked
default (or is rejected with how to name one), as a watch file item without ``account``
does.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from notifier.models import DEFAULT_ACCOUNT, WatchSpec
from notifier.store import IntakeResult, Store
from notifier.watchspec import ANY_ACCOUNT, AccountRule, describe, parse_watch


def parse_queue_row(
    job_id: object,
    labels: object,
    endpoints: object,
    endpoint_names: Collection[str] | None,
    kind: object = None,
    account: object = None,
    accounts: AccountRule = ANY_ACCOUNT,
) -> WatchSpec | str:
    """A queue row as a WatchSpec, or the reason it is rejected. Its columns hold JSON text
    (the queue's format, read here); what they ask for is the parser's to judge. ``kind``,
    ``account``: the row's columns (lip-sync, ``default`` when its writer left them out);
    ``accounts``: the configured ones."""
    decoded: dict[str, object] = {"labels": None, "endpoints": None}
    for column, value, expected in (
        ("labels", labels, 'an object like {"k": "v"}'),
        ("endpoints", endpoints, "an array of endpoint names"),
    ):
        if value in (None, ""):
            continue
        try:
            decoded[column] = json.loads(value) if isinstance(value, str | bytes) else value
        except ValueError:
            return f"{column} is not valid JSON (expected {expected})"
    if account == DEFAULT_ACCOUNT and accounts.names is not None:
        account = account if DEFAULT_ACCOUNT in accounts.names else None
    parsed = parse_watch(
        job_id,
        decoded["labels"],
        decoded["endpoints"],
        endpoints_configured=endpoint_names,
        kind=kind,
        account=account,
        accounts=accounts,
    )
    return parsed if isinstance(parsed, WatchSpec) else describe(parsed)


def take_queue(
    store: Store, endpoint_names: Collection[str] | None, accounts: AccountRule = ANY_ACCOUNT
) -> IntakeResult:
    """Move every waiting queue row into the watches (rejecting bad rows with a reason)."""

    def parse(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec | str:
        # Whatever one row holds (JSON nested 100k deep, bytes that are no text), it is that
        # row that is rejected, with its reason; the others go on.
        try:
            return parse_queue_row(
                job_id, labels, endpoints, endpoint_names, kind, account, accounts
            )
        except RecursionError:
            return "cannot read this row: its JSON is nested too deeply"
        except Exception as exc:
            return f"cannot read this row: {type(exc).__name__}"

    return store.take_queue(parse)
