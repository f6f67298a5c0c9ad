"""The state database: the only module that speaks SQL.

One SQLite file in WAL mode holds the intake queue, the watches, the terminal events, their
deliveries and the cached vendor token. The daemon and CLI commands open it side by side;
every write is a short transaction, so they never hold each other up for long.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from notifier.models import DeliveryState, Event, JobDetail, JobMemory, WatchSpec, WatchState
from notifier.store.claims import DeliveryClaims
from notifier.store.errors import (
    StoreError,
    StoreMissing,
    StoreUnavailable,
    classify,
)
from notifier.store.rows import (
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    DueDelivery,
    IntakeResult,
    WatchRow,
    due_from_row,
    dump_endpoints,
    watch_from_row,
)
from notifier.store.schema import SCHEMA_VERSION, Q, _migrations, _split_sql

#: After a failed write, later writes fail at once for this long (``writable`` still probes).
FAIL_FAST_FOR = 1.0
#: Rows of each kind that one prune forgets at most.
PRUNE_BATCH = 500


class Store(DeliveryClaims):
    """A connection to the state file. Not thread-safe: one per thread or process."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Any = time.time,
        busy_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        """``busy_timeout``: how long a write waits for another writer's lock. CLI commands
        wait; the daemon's event loop must not (it passes a short one and retries later).
        ``create=False``: a missing file raises :class:`StoreMissing` (read-only commands
        must not leave a state behind where a mistyped path points)."""
        self.path = Path(path)
        self._clock = clock
        self._depth = 0
        #: The last write failure (monotonic time, cause), None once a write succeeded again.
        self.write_failure: tuple[float, str] | None = None
        if not create and not self.path.exists():
            raise StoreMissing(self.path)
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Create it private before SQLite does: it holds the vendor token.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 10000")
            # 32 MB of page cache: the active watches' indexes stay in memory at 100k.
            self._db.execute("PRAGMA cache_size = -32000")
            self._migrate()
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open state database: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this program's "
                f"({SCHEMA_VERSION}); upgrade chanjing-notifier"
            )
        for number, script in _migrations():
            if number <= version:
                continue
            with self.transaction():
                # executescript would COMMIT our transaction; run statements one by one.
                for statement in _split_sql(script):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self, *, probe: bool = False) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; nested calls join the outer transaction.

        A write that fails for a reason outside this program (disk full, read-only, locked)
        raises :class:`StoreUnavailable` and leaves no transaction open, even when it is the
        COMMIT that failed; ``write_failure`` remembers it until a write succeeds again.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if not probe:
            self._check_failing()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._raise_unavailable(exc)
            raise
        self._depth = 1
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._depth = 0
            self._rollback()
            if isinstance(exc, sqlite3.OperationalError):
                self._raise_unavailable(exc)
            raise
        self._depth = 0
        self.write_failure = None

    def _rollback(self) -> None:
        """Roll back whatever is open; after a failed COMMIT SQLite may already have."""
        if self._db.in_transaction:
            # Nothing left to undo if it fails: the next BEGIN starts clean.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _raise_unavailable(self, exc: sqlite3.Error) -> None:
        """StoreUnavailable for a fault outside this program; an error that is not about
        the file (a bug in a statement) is left to propagate as it is."""
        cause = classify(exc)
        if cause is not None:
            self.write_failure = (time.monotonic(), cause)
            raise StoreUnavailable(self.path, cause, str(exc)) from exc

    def _check_failing(self) -> None:
        """While writes fail, fail fast instead of waiting on every write (a tick makes
        many); :meth:`writable` probes for real."""
        failure = self.write_failure
        if failure is not None and time.monotonic() - failure[0] < FAIL_FAST_FOR:
            raise StoreUnavailable(self.path, failure[1], "an earlier write failed")

    def _one(self, name: str, *args: Any) -> Any:
        row = self._db.execute(Q[name], args).fetchone()
        return None if row is None else row[0]

    def now(self) -> float:
        return float(self._clock())

    def writable(self) -> bool:
        """A write probe for health checks and for resuming after a failure.

        It really writes (a page of its own table), so a full disk is noticed as such: an
        empty transaction would commit without touching the file.
        """
        try:
            with self.transaction(probe=True):
                self._db.execute(Q["probe_write"], (self.now(),))
            return True
        except StoreUnavailable:
            return False

    # -- watches --------------------------------------------------------------------------

    def add_watches(self, specs: Iterable[WatchSpec], source: str) -> tuple[int, int]:
        """Insert new watches (polled at once); update labels/endpoints of known ones.

        Returns (added, updated). A finished watch stays finished: one event per job.
        """
        added = updated = 0
        now = self.now()
        with self.transaction():
            for spec in specs:
                existed = self._one("watch_exists", spec.job_id) is not None
                cursor = self._db.execute(
                    Q["upsert_watch"],
                    {
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

    def sync_file_watches(self, specs: Sequence[WatchSpec]) -> tuple[int, int, int]:
        """Make the active file-sourced watches equal to ``specs``: (added, updated, removed)."""
        wanted = {spec.job_id for spec in specs}
        with self.transaction():
            added, updated = self.add_watches(specs, "file")
            stale = [
                row[0] for row in self._db.execute(Q["file_watch_ids"]) if row[0] not in wanted
            ]
            for job_id in stale:
                self._db.execute(Q["delete_watch"], (job_id,))
        return added, updated, len(stale)

    def remove_watches(self, job_ids: Iterable[str]) -> int:
        removed = 0
        with self.transaction():
            for job_id in job_ids:
                removed += self._db.execute(Q["delete_watch"], (job_id,)).rowcount
        return removed

    def enqueue(self, specs: Iterable[WatchSpec]) -> int:
        """Write rows into the intake queue, exactly as any other program may."""
        count = 0
        now = self.now()
        with self.transaction():
            for spec in specs:
                self._db.execute(
                    Q["queue_insert"],
                    (
                        spec.job_id,
                        json.dumps(spec.labels, sort_keys=True),
                        dump_endpoints(spec.endpoints),
                        now,
                    ),
                )
                count += 1
        return count

    def take_queue(self, parse: Any, limit: int = 1000) -> IntakeResult:
        """Move queue rows into watches; rows ``parse`` rejects are kept with the reason.

        ``parse(job_id, labels_json, endpoints_json)`` returns a WatchSpec or a problem string.
        """
        accepted: list[WatchSpec] = []
        rejected: list[tuple[int, str]] = []
        with self.transaction():
            rows = self._db.execute(Q["queue_rows"], (limit,)).fetchall()
            for row in rows:
                result = parse(row["job_id"], row["labels"], row["endpoints"])
                if isinstance(result, WatchSpec):
                    accepted.append(result)
                    self._db.execute(Q["queue_delete"], (row["seq"],))
                else:
                    rejected.append((row["seq"], str(result)))
                    self._db.execute(Q["queue_reject"], (str(result), row["seq"]))
            added, updated = self.add_watches(accepted, "queue") if accepted else (0, 0)
        return IntakeResult(added, updated, rejected)

    def rejected_queue_rows(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._db.execute(Q["queue_rejected"])]

    def due_watches(
        self, now: float, limit: int, exclude: frozenset[str] = frozenset()
    ) -> list[WatchRow]:
        """Watches whose poll is due (``poll_key`` passed), most overdue first, skipping
        ones already being polled."""
        return self._watches("due_watches", now, limit, exclude)

    def early_watches(
        self, now: float, limit: int, exclude: frozenset[str] = frozenset()
    ) -> list[WatchRow]:
        """Watches that may be polled now if budget is spare (``next_poll_at`` passed)."""
        return self._watches("early_watches", now, limit, exclude)

    def _watches(
        self, query: str, now: float, limit: int, exclude: frozenset[str]
    ) -> list[WatchRow]:
        rows = self._db.execute(Q[query], (now, limit + len(exclude))).fetchall()
        found = [watch_from_row(row) for row in rows if row["job_id"] not in exclude]
        return found[:limit]

    def active_watches_among(self, job_ids: Sequence[str]) -> list[WatchRow]:
        rows = self._db.execute(Q["active_watches_among"], (json.dumps(list(job_ids)),))
        return [watch_from_row(row) for row in rows]

    def oldest_active_create_time(self) -> int | None:
        value = self._one("oldest_active_create_time")
        return None if value is None else int(value)

    def newest_active_create_time(self) -> int | None:
        value = self._one("newest_active_create_time")
        return None if value is None else int(value)

    def get_watch(self, job_id: str) -> WatchRow | None:
        row = self._db.execute(Q["get_watch"], (job_id,)).fetchone()
        return None if row is None else watch_from_row(row)

    def record_poll(
        self, detail: JobDetail, earliest: float, deadline: float, memory: JobMemory
    ) -> None:
        """A non-terminal answer: its status, and when to poll next (policy's plan)."""
        with self.transaction():
            self._db.execute(
                Q["record_poll"],
                {
                    "job_id": detail.id,
                    "status": detail.status,
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
                },
            )

    def record_poll_error(self, job_id: str, error: str, next_poll_at: float) -> None:
        with self.transaction():
            self._db.execute(
                Q["record_poll_error"],
                {"job_id": job_id, "error": error, "now": self.now(), "next_poll_at": next_poll_at},
            )

    def record_terminal(self, detail: JobDetail, event: Event, endpoints: Sequence[str]) -> bool:
        """Finish the watch, record the event and queue its deliveries: one transaction.

        Returns False when this job already had this event (nothing new is queued).
        """
        now = self.now()
        state = WatchState.SUCCEEDED if detail.status == 20 else WatchState.FAILED
        with self.transaction():
            self._db.execute(
                Q["finish_watch"],
                {
                    "job_id": detail.id,
                    "state": state.value,
                    "status": detail.status,
                    "progress": detail.progress,
                    "msg": detail.msg,
                    "create_time": detail.create_time,
                    "now": now,
                    "polled": 1,
                    "error": None,
                },
            )
            return self._insert_event(event, endpoints, now)

    def _insert_event(self, event: Event, endpoints: Sequence[str], now: float) -> bool:
        """The event and one delivery per endpoint; False if the job had this event already."""
        inserted = self._db.execute(
            Q["insert_event"],
            (
                event.event_id,
                event.job_id,
                event.type,
                event.created_at,
                event.body,
                event.last_seen_running_at,
            ),
        ).rowcount
        if not inserted:
            return False
        for endpoint in endpoints:
            self._db.execute(Q["insert_delivery"], (event.event_id, endpoint, now, now))
        return True

    def record_operational(self, event: Event, endpoints: Sequence[str]) -> None:
        """An event about the daemon itself and its deliveries: one transaction."""
        with self.transaction():
            self._insert_event(event, endpoints, self.now())

    def fail_watch(self, job_id: str, reason: str) -> None:
        """Stop polling a job the vendor rejects (unknown id): no event, reason kept."""
        with self.transaction():
            self._db.execute(
                Q["finish_watch"],
                {
                    "job_id": job_id,
                    "state": WatchState.FAILED.value,
                    "status": None,
                    "progress": None,
                    "msg": reason,
                    "create_time": None,
                    "now": self.now(),
                    "polled": 1,
                    "error": reason,
                },
            )

    def expirable_watches(self, give_up_after: float) -> list[WatchRow]:
        """Watches past ``give_up_after`` whose last answer, that late, said not finished (to
        expire); the others past it are made due, so they get that last look first (a daemon
        that was down for longer must still report what finished meanwhile)."""
        now = self.now()
        args = {"now": now, "cutoff": now - give_up_after, "give_up_after": give_up_after}
        with self.transaction():
            rows = self._db.execute(Q["expirable_watches"], args).fetchall()
            self._db.execute(Q["due_for_last_look"], args)
        return [watch_from_row(row) for row in rows]

    def expire_watch(
        self, job_id: str, event: Event, endpoints: Sequence[str], cutoff: float
    ) -> bool:
        """Expire one watch added by ``cutoff`` (its last look said not finished), record its
        ``lip_sync.expired`` event and queue its deliveries: one transaction. False if it is
        not active, or younger than that by the stored time (a clock step moved it)."""
        now = self.now()
        with self.transaction():
            cursor = self._db.execute(
                Q["expire_watch"], {"job_id": job_id, "now": now, "cutoff": cutoff}
            )
            if not cursor.rowcount:
                return False
            self._insert_event(event, endpoints, now)
        return True

    def record_rejection(
        self, job_id: str, vendor_msg: str, retry_at: float, window: float
    ) -> tuple[int, float, str] | None:
        """A 40000 for this job id: count it and say so in the watch's msg. The next look is
        at ``retry_at`` after the first rejection, then no sooner than ``window`` after the
        first one. Returns
        (rejections since the last good answer, when the first came, that msg), None if the
        watch is not active."""
        now = self.now()
        with self.transaction():
            row = self._db.execute(
                Q["record_rejection"],
                {"job_id": job_id, "now": now, "retry_at": retry_at, "window": window},
            ).fetchone()
            if row is None:
                return None
            count, first = int(row[0]), float(row[1])
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
            msg = f"vendor rejected the id {count}x since {since}: {vendor_msg}"
            self._db.execute(Q["note_rejection"], {"job_id": job_id, "msg": msg})
        return count, first, msg

    def shift_schedule(self, delta: float) -> None:
        """Move every pending poll, delivery and expiry by ``delta`` seconds: the system
        clock stepped, and what was due in a minute is still due in a minute."""
        with self.transaction():
            self._db.execute(Q["shift_watch_schedule"], {"delta": delta})
            self._db.execute(Q["shift_delivery_schedule"], {"delta": delta})

    def prune(self, cutoff: float, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Forget one batch of history older than ``cutoff`` (``state.retention``): events
        whose deliveries are all settled (with their deliveries and attempts), finished
        watches, rejected queue rows. Each kind in its own short transaction, so a long
        history is pruned a little at every housekeeping tick without stalling anything."""
        args = {"cutoff": cutoff, "batch": batch}
        with self.transaction():
            ids = [row[0] for row in self._db.execute(Q["old_settled_events"], args)]
            if ids:
                listed = json.dumps(ids)
                self._db.execute(Q["prune_attempts"], {"ids": listed})
                self._db.execute(Q["prune_deliveries"], {"ids": listed})
                self._db.execute(Q["prune_events"], {"ids": listed})
        with self.transaction():
            watches = self._db.execute(Q["prune_watches"], args).rowcount
        with self.transaction():
            rejected = self._db.execute(Q["prune_rejected"], args).rowcount
        return {"events": len(ids), "watches": int(watches), "rejected": int(rejected)}

    def list_watches(self, state: str | None = None) -> list[dict[str, Any]]:
        if state is None:
            rows = self._db.execute(Q["list_watches"])
        else:
            rows = self._db.execute(Q["list_watches_in_state"], (state,))
        out = []
        for row in rows:
            item = dict(row)
            item["labels"] = json.loads(item["labels"])
            item["endpoints"] = None if item["endpoints"] is None else json.loads(item["endpoints"])
            out.append(item)
        return out

    def live_counts(self) -> tuple[int, int]:
        """(active watches, pending deliveries): two index range counts, cheap enough to
        run every few seconds whatever the size of the history."""
        return int(self._one("count_active")), int(self._one("count_pending_deliveries"))

    def watch_counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in WatchState}
        counts.update({row[0]: row[1] for row in self._db.execute(Q["watch_counts"])})
        return counts

    # -- events and deliveries ------------------------------------------------------------

    def list_events(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._db.execute(Q["list_events"])]

    def due_deliveries(
        self, endpoint: str, now: float, limit: int, exclude: frozenset[int] = frozenset()
    ) -> list[DueDelivery]:
        rows = self._db.execute(
            Q["due_deliveries"], (endpoint, now, limit + len(exclude))
        ).fetchall()
        due = [due_from_row(row) for row in rows if row["id"] not in exclude]
        return due[:limit]

    def delivery_succeeded(
        self,
        delivery_id: int,
        status: int | None,
        *,
        generation: int | None = None,
        started: float | None = None,
        claim: int | None = None,  # claims: see notifier/store/claims.py
    ) -> bool:
        """Record a successful attempt; False when the row was reset meanwhile (replay)."""
        now = self.now()
        with self.transaction():
            cursor = self._db.execute(
                Q["delivery_succeeded"],
                {
                    "id": delivery_id,
                    "now": now,
                    "status": status,
                    "generation": generation,
                    "started": now if started is None else started,
                    "claim": claim,
                },
            )
            self._attempt(delivery_id, started, now, status, None, "delivered")
        return cursor.rowcount > 0

    def _attempt(
        self,
        delivery_id: int,
        started: float | None,
        now: float,
        status: int | None,
        error: str | None,
        outcome: str,
    ) -> None:
        """Keep the attempt in the history a replay does not reset (``deliveries show``)."""
        self._db.execute(
            Q["insert_attempt"],
            {
                "id": delivery_id,
                "started": now if started is None else started,
                "now": now,
                "status": status,
                "error": error,
                "outcome": outcome,
            },
        )

    def delivery_failed(
        self,
        delivery_id: int,
        status: int | None,
        error: str,
        next_attempt_at: float | None,
        *,
        generation: int | None = None,
        deferred: bool = False,
        started: float | None = None,
        claim: int | None = None,  # claims: see notifier/store/claims.py
    ) -> bool:
        """Record a failed attempt; ``next_attempt_at=None`` makes the delivery dead.

        False when the row was reset (replay) or parked (endpoint removed) meanwhile: the
        reset wins. ``deferred``: the retry follows the receiver's Retry-After.
        """
        state = DeliveryState.PENDING if next_attempt_at is not None else DeliveryState.DEAD
        now = self.now()
        with self.transaction():
            cursor = self._db.execute(
                Q["delivery_failed"],
                {
                    "id": delivery_id,
                    "state": state.value,
                    "now": now,
                    "status": status,
                    "error": error,
                    "next_attempt_at": next_attempt_at,
                    "generation": generation,
                    "deferred": int(deferred),
                    "started": now if started is None else started,
                    "claim": claim,
                },
            )
            outcome = "failed" if next_attempt_at is not None else "dead"
            self._attempt(delivery_id, started, now, status, error, outcome)
        return cursor.rowcount > 0

    def replay(
        self,
        event_ids: Iterable[str],
        route: Callable[[str, tuple[str, ...] | None], Sequence[str]] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, int]:
        """Queue every delivery of these events again, from the first retry step.

        ``route(event_type, watch_endpoints)`` names the endpoints the event goes to now;
        their missing deliveries are created (an event whose routing found no endpoint has
        none). ``endpoint``: only the delivery to that endpoint. Returns the number of
        deliveries queued per event. The attempt history is kept.
        """
        now = self.now()
        result = {}
        with self.transaction():
            for event_id in event_ids:
                row = self._db.execute(Q["get_event"], (event_id,)).fetchone()
                if row is not None and route is not None:
                    named = row["watch_endpoints"]
                    watch_endpoints = None if named is None else tuple(json.loads(named))
                    for name in route(row["type"], watch_endpoints):
                        if endpoint is None or name == endpoint:
                            self._db.execute(Q["insert_delivery"], (event_id, name, now, now))
                # Counts the rows just created too.
                args = {"event_id": event_id, "now": now, "endpoint": endpoint}
                query = "replay_event" if endpoint is None else "replay_event_endpoint"
                result[event_id] = self._db.execute(Q[query], args).rowcount
        return result

    def replay_dead(self) -> int:
        with self.transaction():
            return int(self._db.execute(Q["replay_dead"], {"now": self.now()}).rowcount)

    def park_unconfigured(
        self, configured: Collection[str], removed: Collection[str] = ()
    ) -> dict[str, int]:
        """Pending deliveries of endpoints not in ``configured`` become dead, with the reason
        "endpoint removed" (for names in ``removed``) or "endpoint not configured".

        Returns {endpoint: rows parked}. A read first: nothing is written when all is well.
        """
        stray = [
            row[0] for row in self._db.execute(Q["pending_endpoints"]) if row[0] not in configured
        ]
        parked: dict[str, int] = {}
        if not stray:
            return parked
        with self.transaction():
            for endpoint in stray:
                reason = ENDPOINT_REMOVED if endpoint in removed else ENDPOINT_NOT_CONFIGURED
                count = self._db.execute(
                    Q["park_endpoint"], {"endpoint": endpoint, "reason": reason}
                ).rowcount
                if count:
                    parked[endpoint] = count
        return parked

    def revive_endpoints(self, configured: Iterable[str]) -> dict[str, int]:
        """Deliveries parked for want of their endpoint, which is configured again: pending
        from the first step. Returns {endpoint: rows revived}."""
        now = self.now()
        revived: dict[str, int] = {}
        with self.transaction():
            for endpoint in configured:
                count = self._db.execute(
                    Q["revive_endpoint"], {"endpoint": endpoint, "now": now}
                ).rowcount
                if count:
                    revived[endpoint] = count
        return revived

    def list_deliveries(self, state: str | None = None) -> list[dict[str, Any]]:
        if state is None:
            rows = self._db.execute(Q["list_deliveries"])
        else:
            rows = self._db.execute(Q["list_deliveries_in_state"], (state,))
        return [dict(row) for row in rows]

    def delivery_counts_by_endpoint(self) -> dict[tuple[str, str], int]:
        """{(state, endpoint): count}, read from an index."""
        rows = self._db.execute(Q["delivery_counts_by_endpoint"])
        return {(row[0], row[1]): row[2] for row in rows}

    def delivery_counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in DeliveryState}
        counts.update({row[0]: row[1] for row in self._db.execute(Q["delivery_counts"])})
        return counts

    def event_history(self, event_id: str) -> dict[str, Any] | None:
        """An event, its deliveries and every attempt of each (``deliveries show``)."""
        row = self._db.execute(Q["event_summary"], (event_id,)).fetchone()
        if row is None:
            return None
        event = dict(row)
        event["body"] = json.loads(event["body"])
        deliveries = [dict(d) for d in self._db.execute(Q["deliveries_of_event"], (event_id,))]
        attempts = [dict(a) for a in self._db.execute(Q["attempts_of_event"], (event_id,))]
        for delivery in deliveries:
            delivery["history"] = [
                {k: v for k, v in a.items() if k not in ("delivery_id", "endpoint")}
                for a in attempts
                if a["delivery_id"] == delivery["id"]
            ]
        event["deliveries"] = deliveries
        return event

    # -- operator listings ----------------------------------------------------------------

    def list_filtered(
        self,
        what: str,
        *,
        state: str | None = None,
        job: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first: ``what`` is watches, events or deliveries."""
        args = {"state": state, "job": job, "since": since, "limit": -1 if limit is None else limit}
        rows = [dict(r) for r in self._db.execute(Q[f"list_{what}_filtered"], args)]
        for item in rows:
            for key in ("labels", "endpoints"):
                if isinstance(item.get(key), str):
                    item[key] = json.loads(item[key])
        return rows

    def watch_summary(self, job_id: str) -> dict[str, Any] | None:
        row = self._db.execute(Q["watch_summary"], (job_id,)).fetchone()
        if row is None:
            return None
        item = dict(row)
        item["labels"] = json.loads(item["labels"])
        item["endpoints"] = None if item["endpoints"] is None else json.loads(item["endpoints"])
        return item

    def reopen_watch(self, job_id: str) -> bool:
        """An expired or failed watch is polled again, as if just added."""
        with self.transaction():
            args = {"job_id": job_id, "now": self.now()}
            return self._db.execute(Q["reopen_watch"], args).rowcount > 0

    def clear_rejected(self) -> int:
        with self.transaction():
            return int(self._db.execute(Q["queue_clear_rejected"]).rowcount)

    # -- vendor token ---------------------------------------------------------------------

    def get_token(self, account: str) -> tuple[str, float] | None:
        row = self._db.execute(Q["get_token"], (account,)).fetchone()
        return None if row is None else (row[0], float(row[1]))

    def save_token(self, account: str, token: str, expire_at: float) -> None:
        with self.transaction():
            self._db.execute(Q["save_token"], (account, token, expire_at, self.now()))

    def drop_token(self, account: str, token: str) -> None:
        with self.transaction():
            self._db.execute(Q["drop_token"], (account, token))
