"""The watches and the intake queue: what is watched, what the poller learns of it, and how
watches arrive (the queue any program writes, each node's watch file, discovery).

With several nodes on one state each node's watch file is that node's *listing*: a sync
replaces only its own listing, and an active file-sourced watch is removed only when no
node's listing has it any more, so a node with an older copy of the file cannot delete the
watches of the others. A node keeps its listing alive (each watch-file tick); a listing not
kept for :data:`LISTING_TTL` (the node is gone, or restarted under a new ``hostname:pid``)
is dropped by another node's next sync. One daemon on the state (SQLite) passes no node: its
file is the only listing, as before listings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from notifier.kinds import DEFAULT_KIND
from notifier.models import DEFAULT_ACCOUNT, JobDetail, JobMemory, WatchSpec
from notifier.store.base import StoreBase
from notifier.store.rows import IntakeResult, WatchRow, dump_data, dump_endpoints, watch_from_row
from notifier.watchspec import watch_specs

#: A node's watch-file listing not kept for this long is dropped by another node's next sync
#: (its ids stay watched until then): the node is gone, or restarted under a new name.
LISTING_TTL = 300.0


class Watches(StoreBase):
    """The ``watches``, ``watch_queue``, ``file_listings``/``file_listers`` and
    ``discovered`` tables."""

    def add_watches(self, specs: Iterable[WatchSpec], source: str) -> tuple[int, int]:
        """Insert new watches (polled at once); update labels/endpoints of known ones.

        Returns (added, updated). A finished watch stays finished: one event per job.
        """
        added = updated = 0
        now = self.now()
        with self.transaction():
            for spec in specs:
                existed = (
                    self._one("watch_exists", spec.account, spec.kind, spec.job_id) is not None
                )
                cursor = self._run(
                    "upsert_watch",
                    {
                        "account": spec.account,
                        "kind": spec.kind,
                        "job_id": spec.job_id,
                        "source": source,
                        "labels": json.dumps(spec.labels, sort_keys=True),
                        "endpoints": dump_endpoints(spec.endpoints),
                        "now": now,
                    },
                )
                if not existed:
                    added += 1
                elif cursor.rowcount:
                    updated += 1
        return added, updated

    def remove_watches(
        self, job_ids: Iterable[str], *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> int:
        """Remove the watches of ``account`` and ``kind`` with these ids (another kind's or
        account's of the same id stay)."""
        removed = 0
        now = self.now()
        with self.transaction():
            for job_id in job_ids:
                # Discovery must not make a removed watch again.
                args = {"account": account, "kind": kind, "job_id": job_id, "now": now}
                self._run("tombstone_watch", args)
                removed += self._run("delete_watch", (account, kind, job_id)).rowcount
        return removed

    def enqueue(self, specs: Iterable[WatchSpec]) -> int:
        """Write rows into the intake queue, exactly as any other program may."""
        count = 0
        now = self.now()
        with self.transaction():
            for spec in specs:
                self._run(
                    "queue_insert",
                    (
                        spec.job_id,
                        json.dumps(spec.labels, sort_keys=True),
                        dump_endpoints(spec.endpoints),
                        now,
                        spec.kind,
                        spec.account,
                    ),
                )
                count += 1
        return count

    def take_queue(self, parse: Any, limit: int = 1000) -> IntakeResult:
        """Move queue rows into watches; rows ``parse`` rejects are kept with the reason.

        ``parse(job_id, labels_json, endpoints_json, kind, account)`` returns a WatchSpec or
        a problem string (``kind``, ``account``: the row's columns, ``lip_sync`` and
        ``default`` unless its writer named them).
        """
        accepted: list[WatchSpec] = []
        rejected: list[tuple[int, str]] = []
        with self.transaction():
            rows = self._run("queue_rows", (limit,)).fetchall()
            for row in rows:
                result = parse(
                    row["job_id"], row["labels"], row["endpoints"], row["kind"], row["account"]
                )
                if isinstance(result, WatchSpec):
                    accepted.append(result)
                    self._run("queue_delete", (row["seq"],))
                else:
                    rejected.append((row["seq"], str(result)))
                    self._run("queue_reject", (str(result), row["seq"]))
            added, updated = self.add_watches(accepted, "queue") if accepted else (0, 0)
        return IntakeResult(added, updated, rejected)

    def due_watches(
        self,
        now: float,
        limit: int,
        exclude: frozenset[str] = frozenset(),
        *,
        account: str = DEFAULT_ACCOUNT,
    ) -> list[WatchRow]:
        """``account``'s watches whose poll is due (``poll_key`` passed), most overdue
        first, skipping ones already being polled (each account's lane polls its own)."""
        return self._watches("due_watches", now, limit, exclude, account)

    def early_watches(
        self,
        now: float,
        limit: int,
        exclude: frozenset[str] = frozenset(),
        *,
        account: str = DEFAULT_ACCOUNT,
    ) -> list[WatchRow]:
        """``account``'s watches that may be polled now if budget is spare
        (``next_poll_at`` passed)."""
        return self._watches("early_watches", now, limit, exclude, account)

    def _watches(
        self, query: str, now: float, limit: int, exclude: frozenset[str], account: str
    ) -> list[WatchRow]:
        rows = self._run(query, (account, now, limit + len(exclude))).fetchall()
        found = [watch_from_row(row) for row in rows if row["job_id"] not in exclude]
        return found[:limit]

    def active_watches_among(
        self, job_ids: Sequence[str], *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> list[WatchRow]:
        """The active watches of ``account`` and ``kind`` among these ids (a list sweep's
        page: the account's list)."""
        rows = self._run("active_watches_among", (account, kind, json.dumps(list(job_ids))))
        return [watch_from_row(row) for row in rows]

    def oldest_active_create_time(
        self, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> int | None:
        value = self._one("oldest_active_create_time", account, kind)
        return None if value is None else int(value)

    def newest_active_create_time(
        self, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> int | None:
        value = self._one("newest_active_create_time", account, kind)
        return None if value is None else int(value)

    def active_counts_by_kind(self, account: str = DEFAULT_ACCOUNT) -> dict[str, int]:
        """{kind: ``account``'s active watches}, only kinds that have one (its sweeps share
        its budget by these)."""
        rows = self._run("active_counts_by_kind", (account,))
        return {str(row[0]): int(row[1]) for row in rows}

    def active_ids(
        self, kind: str, limit: int, after: str = "", *, account: str = DEFAULT_ACCOUNT
    ) -> list[str]:
        """Up to ``limit`` active ids of ``account`` and ``kind`` after ``after``, in id
        order (a kind listed by ids asks for them a batch at a time; ``""`` from the first)."""
        args = {"account": account, "kind": kind, "limit": limit, "after": after}
        return [str(row[0]) for row in self._run("active_ids", args)]

    def get_watch(
        self, job_id: str, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> WatchRow | None:
        row = self._run("get_watch", (account, kind, job_id)).fetchone()
        return None if row is None else watch_from_row(row)

    def record_poll(
        self, detail: JobDetail, earliest: float, deadline: float, memory: JobMemory
    ) -> None:
        """A non-terminal answer: its status and phase, and when to poll next (policy's
        plan). The watch is the detail's kind's."""
        with self.transaction():
            self._run(
                "record_poll",
                {
                    "account": detail.account,
                    "kind": detail.kind,
                    "job_id": detail.id,
                    "status": detail.status,
                    "phase": None if detail.phase is None else detail.phase.value,
                    "progress": detail.progress,
                    "msg": detail.msg,
                    "create_time": detail.create_time,
                    "now": self.now(),
                    "next_poll_at": earliest,
                    "poll_key": deadline,
                    "first_running_at": memory.first_running_at,
                    "first_running_progress": memory.first_running_progress,
                    "last_queued_at": memory.last_queued_at,
                    "misses": memory.misses,
                    "predicted_at": memory.predicted_at,
                    "last_data": dump_data(detail.raw),
                },
            )

    def record_poll_error(
        self,
        job_id: str,
        error: str,
        next_poll_at: float,
        *,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        args: dict[str, object] = {"account": account, "kind": kind, "job_id": job_id}
        args |= {"error": error, "next_poll_at": next_poll_at}
        with self.transaction():
            self._run("record_poll_error", {**args, "now": self.now()})

    def expirable_watches(
        self, give_up_after: float, *, account: str = DEFAULT_ACCOUNT
    ) -> list[WatchRow]:
        """``account``'s watches past ``give_up_after`` whose last answer, that late, said not
        finished (to expire); the others past it are made due, so they get that last look
        first (a daemon that was down for longer must still report what finished meanwhile)."""
        now = self.now()
        args = {"account": account, "now": now, "cutoff": now - give_up_after}
        args["give_up_after"] = give_up_after
        with self.transaction():
            rows = self._run("expirable_watches", args).fetchall()
            self._run("due_for_last_look", args)
        return [watch_from_row(row) for row in rows]

    def record_rejection(
        self,
        job_id: str,
        vendor_msg: str,
        retry_at: float,
        window: float,
        *,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> tuple[int, float, str] | None:
        """A 40000 for this job id: count it and say so in the watch's msg. The next look is
        at ``retry_at`` after the first rejection, then no sooner than ``window`` after the
        first one. Returns
        (rejections since the last good answer, when the first came, that msg), None if the
        watch is not active."""
        now = self.now()
        with self.transaction():
            row = self._run(
                "record_rejection",
                {
                    "account": account,
                    "kind": kind,
                    "job_id": job_id,
                    "now": now,
                    "retry_at": retry_at,
                    "window": window,
                },
            ).fetchone()
            if row is None:
                return None
            count, first = int(row[0]), float(row[1])
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
            msg = f"vendor rejected the id {count}x since {since}: {vendor_msg}"
            args = {"account": account, "kind": kind, "job_id": job_id, "msg": msg}
            self._run("note_rejection", args)
        return count, first, msg

    def reopen_watch(
        self, job_id: str, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """An expired, failed or rejected watch is polled again, as if just added; its
        reopen count goes up, so its next event is a new event with an id of its own."""
        with self.transaction():
            args = {"account": account, "kind": kind, "job_id": job_id, "now": self.now()}
            return bool(self._run("reopen_watch", args).rowcount > 0)

    def make_due(
        self, job_id: str, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Poll an active watch now rather than when planned (a vendor callback said it may
        have finished). On PostgreSQL every node hears of it, so the one that holds the vendor
        lease polls it at once. False when the watch is not active."""
        with self.transaction():
            args = {"account": account, "kind": kind, "job_id": job_id, "now": self.now()}
            return bool(self._run("make_due", args).rowcount > 0)

    def clear_rejected(self) -> int:
        with self.transaction():
            return int(self._run("queue_clear_rejected").rowcount)

    # -- the watch files ------------------------------------------------------------------

    def sync_file_watches(
        self, specs: Sequence[WatchSpec], node: str | None = None
    ) -> tuple[int, int, int]:
        """Take a watch file's ``specs``: (added, updated, removed).

        ``node`` None: the one daemon on the state (SQLite): the active file-sourced watches
        become equal to ``specs``. With ``node`` (several nodes share the state): the file is
        that node's listing; the sync replaces only its own listing, and removes an active
        file-sourced watch only when no node's listing has it any more (a node with an older
        copy of the file must not delete the watches of the others). Listings of nodes not
        seen for :data:`LISTING_TTL` (gone, or restarted under a new ``hostname:pid``) are
        dropped first.
        """
        wanted = {(spec.account, spec.kind, spec.job_id) for spec in specs}
        now = self.now()
        with self.transaction():
            added, updated = self.add_watches(specs, "file")
            if node is None:
                self._run("file_listings_clear")
                self._run("file_listers_clear")
                stale = [key for key in self._keys("file_watch_ids") if key not in wanted]
            else:
                self._run("file_lister_seen", {"node": node, "now": now})
                cutoff = {"cutoff": now - LISTING_TTL}
                self._run("file_listings_drop_stale", cutoff)
                self._run("file_listers_drop_stale", cutoff)
                listed = set(self._keys("file_listing_ids", {"node": node}))
                for account, kind, job_id in sorted(listed - wanted):
                    args = {"node": node, "account": account, "kind": kind, "job_id": job_id}
                    self._run("file_listing_remove", args)
                for account, kind, job_id in sorted(wanted - listed):
                    args = {"node": node, "account": account, "kind": kind, "job_id": job_id}
                    self._run("file_listing_add", args)
                stale = self._keys("file_watch_ids_unlisted")
            for key in stale:
                self._run("delete_watch", key)
        return added, updated, len(stale)

    def _keys(self, query: str, args: Any = ()) -> list[tuple[str, str, str]]:
        """(account, kind, job_id) of each row ``query`` answers."""
        return [(str(row[0]), str(row[1]), str(row[2])) for row in self._run(query, args)]

    def keep_file_listing(self, node: str) -> bool:
        """This node is still here: its listing stays (see :meth:`sync_file_watches`). False
        when it has none any more (another node dropped it as stale: sync again)."""
        with self.transaction():
            cursor = self._run("file_lister_touch", {"node": node, "now": self.now()})
            return bool(cursor.rowcount)

    # -- discovery ------------------------------------------------------------------------

    def discover(
        self,
        found: Mapping[str, int],
        labels: Mapping[str, str],
        endpoints: Sequence[str] | None,
        *,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> list[str]:
        """Make watches of ``account`` of the ``found`` ids ({id: create_time}) that never
        were one (nor were discovered before); the ids made, in the order given. Idempotent:
        a job seen twice (pages shifting) is made once."""
        if not found:
            return []
        args = {"account": account, "kind": kind, "ids": json.dumps(list(found))}
        with self.transaction():
            known = {row[0] for row in self._run("discovered_among", args)}
            new = [job_id for job_id in found if job_id not in known]
            now = self.now()
            for job_id in new:
                self._run("add_discovered", (account, kind, job_id, found[job_id], now))
            chosen = None if endpoints is None else list(endpoints)
            specs = watch_specs(new, dict(labels), chosen, kind=kind, account=account)
            self.add_watches(specs, "discovery")
        return new
