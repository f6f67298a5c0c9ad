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
from notifier.kinds import DEFAULT_KIND
from notifier.models import DEFAULT_ACCOUNT, WatchSpec, WatchState
from notifier.store import Store
from notifier.watchspec import (
    ANY_ACCOUNT,
    AccountRule,
    Problem,
    parse_endpoints,
    parse_watch,
    watch_specs,
)


class LabelsTooMany(ValueError):
    """Labels merged into a known watch would pass the limits (nothing was written)."""


#: Where watches written through the queue come from (``watch add``, the API).
QUEUE = "queue"
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


def endpoints_problem(names: Sequence[str], configured: Collection[str]) -> str | None:
    """Why ``names`` cannot be the endpoints of a watch (in the parser's words), or None: for
    a caller that names endpoints outside a watch request (the gateway's header)."""
    problems: list[Problem] = []
    parse_endpoints(list(names), configured, problems)
    return "; ".join(p.msg for p in problems) or None


def add_watches(
    store: Store,
    ids: Sequence[str],
    labels: Mapping[str, str],
    endpoints: Sequence[str] | None,
    endpoint_names: Collection[str],
    *,
    reopen: bool = False,
    source: str = "queue",
    kind: str = DEFAULT_KIND,
    account: str = DEFAULT_ACCOUNT,
    accounts: AccountRule = ANY_ACCOUNT,
) -> AddOutcome:
    """Watch ``ids`` of ``kind`` on ``account`` (already checked, the kind and account
    too; ``accounts``: the configured ones, which the queue judges its rows by): new ones
    are created, known ones get ``labels`` merged (given ones win) and ``endpoints``
    replaced when given; finished ones stay finished unless ``reopen`` and they expired,
    failed or were rejected. Every spec is the parser's (:mod:`notifier.watchspec`):
    merged labels are checked as given ones are. The same id under another kind or account
    is another watch.

    :class:`LabelsTooMany` when a known watch's merged labels would pass the limits.

    One transaction: the rows go through the queue (as any program's would) and the queue is
    taken at once, so the watches exist when this returns; ``source`` other than ``queue``
    (a callback) writes the watches directly, under that source.
    """
    wanted = list(endpoints) if endpoints is not None else None
    outcome = AddOutcome(list(dict.fromkeys(ids)))
    with store.transaction():
        specs: list[WatchSpec] = []
        for job_id in outcome.ids:
            known = store.watch_summary(job_id, kind=kind, account=account)
            if known is None:
                specs += watch_specs([job_id], dict(labels), wanted, kind=kind, account=account)
                continue
            merged = {**known["labels"], **labels}
            keep = known["endpoints"]
            spec = parse_watch(
                job_id,
                merged,
                wanted if wanted is not None else keep,
                endpoints_configured=None,
                kind=kind,
                account=account,
            )
            if not isinstance(spec, WatchSpec):  # raised inside the transaction: nothing kept
                said = "; ".join(p.msg for p in spec)
                raise LabelsTooMany(f"{job_id}: with the labels it has, {said}")
            specs.append(spec)
            if known["state"] == WatchState.ACTIVE.value:
                outcome.known.append(job_id)
            elif reopen and known["state"] in REOPENABLE:
                store.reopen_watch(job_id, kind=kind, account=account)
                outcome.reopened[job_id] = known["state"]
            else:
                outcome.finished[job_id] = known
        if source != QUEUE:
            # Made by the daemon itself from its own settings (a callback): written as
            # what they are, so ``watch list`` says where the watch came from.
            outcome.added = store.add_watches(specs, source)[0]
            return outcome
        store.enqueue(specs)
        # Taken in the same transaction: the watches are listed right after, and a daemon
        # that has not loaded an endpoint named here (config edited, no reload yet) never
        # sees the row to reject it; its deliveries wait, parked, until it runs that endpoint.
        outcome.added = take_queue(store, endpoint_names, accounts).added
    return outcome


def watch_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored watch as a row of ``watch list --json`` (and ``GET /v1/watches/{id}``)."""
    row["seen"] = row["polls"]
    return row


def find_watch(
    store: Store, job_id: str, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any] | None:
    """The watch of ``account`` and ``kind`` with this id (another kind's or account's of
    the same id is another watch)."""
    rows = store.list_filtered("watches", job=job_id, kind=kind, account=account, limit=1)
    return watch_row(rows[0]) if rows else None
