"""What operators read (``watch list``, ``deliveries show``, ``GET /v1/events``, the
metrics): read-only listings over every table, through the named queries."""

from __future__ import annotations

import json
from collections.abc import Collection
from enum import Enum
from typing import Any

from notifier.kinds import DEFAULT_KIND
from notifier.models import DEFAULT_ACCOUNT, DeliveryState, WatchState
from notifier.store.base import StoreBase


def _decoded(row: Any) -> dict[str, Any]:
    """A row as a dict, its JSON columns (labels, endpoints) decoded."""
    item = dict(row)
    for key in ("labels", "endpoints"):
        if isinstance(item.get(key), str):
            item[key] = json.loads(item[key])
    return item


class Listings(StoreBase):
    """Read-only queries, over every table."""

    def _in_state(self, query: str, state: str | None) -> list[dict[str, Any]]:
        """``query`` for every state, or ``{query}_in_state`` for one."""
        if state is None:
            return [_decoded(row) for row in self._run(query)]
        return [_decoded(row) for row in self._run(f"{query}_in_state", (state,))]

    def _counts(self, query: str, states: type[Enum]) -> dict[str, int]:
        """{state: rows}, every state present."""
        counts = {state.value: 0 for state in states}
        counts.update({row[0]: row[1] for row in self._run(query)})
        return counts

    def rejected_queue_rows(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._run("queue_rejected")]

    def list_watches(self, state: str | None = None) -> list[dict[str, Any]]:
        return self._in_state("list_watches", state)

    def watch_counts(self) -> dict[str, int]:
        return self._counts("watch_counts", WatchState)

    def list_events(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._run("list_events")]

    def events_after(
        self,
        after: str | None,
        limit: int,
        max_bytes: int | None = None,
        *,
        accounts: Collection[str] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Up to ``limit`` events recorded after event ``after`` (from the first without), in
        recorded order, each ``{"id", **body}``; None when ``after`` is not (or no longer:
        retention) recorded, so a cursor never silently restarts from the beginning.
        ``max_bytes``: stop before the bodies pass this size (one event at least), so a page
        of big events is not built whole in memory. ``accounts``: only events of these
        (None: every event): filtered in the query, before the page is cut, and another
        account's event as ``after`` is as unknown as one never recorded."""
        chosen = None if accounts is None else json.dumps(sorted(accounts))
        seq = 0
        if after is not None:
            row = self._run("event_seq", {"event_id": after, "accounts": chosen}).fetchone()
            if row is None:
                return None
            seq = row[0]
        events: list[dict[str, Any]] = []
        size = 0
        args = {"seq": seq, "limit": limit, "accounts": chosen}
        for row in self._run("events_after", args).fetchall():
            body = bytes(row["body"])
            size += len(body)
            if events and max_bytes is not None and size > max_bytes:
                break
            events.append({"id": row["event_id"], **json.loads(body)})
        return events

    def list_deliveries(self, state: str | None = None) -> list[dict[str, Any]]:
        return self._in_state("list_deliveries", state)

    def delivery_counts_by_endpoint(self) -> dict[tuple[str, str], int]:
        """{(state, endpoint): count}, read from an index."""
        rows = self._run("delivery_counts_by_endpoint")
        return {(row[0], row[1]): row[2] for row in rows}

    def delivery_counts(self) -> dict[str, int]:
        return self._counts("delivery_counts", DeliveryState)

    def event_history(self, event_id: str) -> dict[str, Any] | None:
        """An event, its deliveries and every attempt of each (``deliveries show``)."""
        row = self._run("event_summary", (event_id,)).fetchone()
        if row is None:
            return None
        event = dict(row)
        event["body"] = json.loads(event["body"])
        deliveries = [dict(d) for d in self._run("deliveries_of_event", (event_id,))]
        attempts = [dict(a) for a in self._run("attempts_of_event", (event_id,))]
        for delivery in deliveries:
            delivery["history"] = [
                {k: v for k, v in a.items() if k not in ("delivery_id", "endpoint")}
                for a in attempts
                if a["delivery_id"] == delivery["id"]
            ]
        event["deliveries"] = deliveries
        return event

    def list_filtered(
        self,
        what: str,
        *,
        state: str | None = None,
        job: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        kind: str | None = None,
        account: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first: ``what`` is watches, events or deliveries (``kind``, ``account``:
        only those of that kind's, that account's watches)."""
        args = {"state": state, "job": job, "since": since, "kind": kind, "account": account}
        args["limit"] = -1 if limit is None else limit
        return [_decoded(row) for row in self._run(f"list_{what}_filtered", args)]

    def watch_summary(
        self, job_id: str, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> dict[str, Any] | None:
        row = self._run("watch_summary", (account, kind, job_id)).fetchone()
        return None if row is None else _decoded(row)
