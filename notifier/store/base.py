"""The state's behaviour, once for both backends: every public method of :class:`Store`.

The intake queue, the watches, the terminal events, their deliveries and the cached vendor
token live in one database: a SQLite file (``sqlite.py``, the embedded default) or a
PostgreSQL database shared by several nodes (``postgres.py``). This module holds the Python
logic, the transactions and the JSON handling; a backend brings its connection, its SQL
(``sql/<dialect>/``) and its reading of errors. Every write is a short transaction, so the
daemon and CLI commands never hold each other up for long.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from notifier.models import Event, JobDetail, JobMemory, WatchSpec, WatchState
from notifier.store.claims import DeliveryClaims
from notifier.store.discovery import CREATES_MARKS, DiscoveryMarks
from notifier.store.errors import StoreError, StoreUnavailable
from notifier.store.file_watches import FileWatches
from notifier.store.gateway import GatewayState
from notifier.store.lease import VendorLease
from notifier.store.listings import Listings
from notifier.store.rows import (
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    DueDelivery,
    IntakeResult,
    WatchRow,
    due_from_row,
    dump_data,
    dump_endpoints,
    watch_from_row,
)
from notifier.store.schema import SCHEMA_VERSION, Dialect, _split_sql

if TYPE_CHECKING:
    from notifier.store.postgres_listen import ChangeFeed

#: After a failed write, later writes fail at once for this long (``writable`` still probes).
FAIL_FAST_FOR = 1.0
#: Rows of each kind that one prune forgets at most.
PRUNE_BATCH = 500


def is_url(location: object) -> bool:
    """A PostgreSQL URL rather than a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class Store(Listings, DeliveryClaims, DiscoveryMarks, GatewayState, VendorLease, FileWatches):
    """A connection to the state. Not thread-safe: one per thread or process.

    ``Store(location)`` opens the backend the location names: a file path is SQLite, a
    ``postgresql://`` URL is PostgreSQL (see :func:`notifier.store.open_store`).
    """

    #: The SQL of this backend.
    dialect: ClassVar[Dialect]
    #: Errors of the driver that may mean a fault outside this program (disk full, lock…).
    _FAULTS: ClassVar[tuple[type[BaseException], ...]]
    #: Where the state is, for messages (never with a password).
    where: str
    _db: Any

    def __new__(cls, location: str | os.PathLike[str], **kwargs: Any) -> Store:
        if cls is Store:
            # Only the backend in use is imported: psycopg alone costs ~0.2 s a process.
            if is_url(location):
                from notifier.store.postgres import PostgresStore

                cls = PostgresStore
            else:
                from notifier.store.sqlite import SqliteStore

                cls = SqliteStore
        return super().__new__(cls)

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        clock: Any = time.time,
        busy_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        """``busy_timeout``: how long a write waits for another writer's lock. CLI commands
        wait; the daemon's event loop must not (it passes a short one and retries later).
        ``create=False``: a missing state raises :class:`StoreMissing` (read-only commands
        must not leave a state behind where a mistyped location points)."""
        self._location = location
        self._clock = clock
        self._depth = 0
        self._busy_timeout = busy_timeout
        #: The last write failure (monotonic time, cause), None once a write succeeded again.
        self.write_failure: tuple[float, str] | None = None
        self._open(location, create=create)

    def _open(self, location: str | os.PathLike[str], *, create: bool) -> None:
        """Connect (and migrate): the backend's part of opening."""
        raise NotImplementedError

    def reopen(self, clock: Callable[[], float] = time.time) -> Store:
        """Another connection to the same state, for another thread: on the plain wall clock
        by default (the daemon's own clock looks for steps, on its loop only)."""
        return type(self)(self._location, clock=clock, busy_timeout=self._busy_timeout)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what a backend provides ----------------------------------------------------------

    def _execute(self, sql: str, args: Any = ()) -> Any:
        """Run one statement; a cursor (``fetchone``, ``fetchall``, ``rowcount``, iterable)."""
        return self._db.execute(sql, args)

    def _begin(self) -> None:
        raise NotImplementedError

    def _in_transaction(self) -> bool:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> str | None:
        """An operator's reading of a driver error, None for a bug in a statement."""
        raise NotImplementedError

    def _schema_version(self) -> int:
        raise NotImplementedError

    def _set_schema_version(self, number: int) -> None:
        raise NotImplementedError

    def _migration_guard(self) -> AbstractContextManager[None]:
        """Held around the whole migration (PostgreSQL: one transaction under a lock, so
        two nodes starting at once do not both migrate)."""
        return contextlib.nullcontext()

    # -- plumbing -------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._migration_guard():
            version = self._schema_version()
            self._refuse_newer(version)
            for number, script in self.dialect.migrations:
                if number <= version:
                    continue
                with self.transaction():
                    # One by one: a script runner might COMMIT our transaction.
                    for statement in _split_sql(script):
                        self._execute(statement)
                    self._set_schema_version(number)
            if any(
                CREATES_MARKS in script
                for number, script in self.dialect.migrations
                if number > version
            ):
                # The state began now (or, older, learns marks now): ``since: start``.
                self._note_created()

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: schema version {version} is newer than this program's "
                f"({SCHEMA_VERSION}); upgrade chanjing-notifier"
            )

    def _run(self, name: str, args: Any = ()) -> Any:
        """Run the named statement of this backend's ``queries.sql``."""
        return self._execute(self.dialect.queries[name], args)

    @contextmanager
    def transaction(self, *, probe: bool = False) -> Iterator[None]:
        """BEGIN … COMMIT; nested calls join the outer transaction.

        A write that fails for a reason outside this program (disk full, read-only, locked,
        server gone) raises :class:`StoreUnavailable` and leaves no transaction open, even
        when it is the COMMIT that failed; ``write_failure`` remembers it until a write
        succeeds again.
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
            self._begin()
        except self._FAULTS as exc:
            self._raise_unavailable(exc)
            raise
        self._depth = 1
        try:
            yield
            self._execute("COMMIT")
        except BaseException as exc:
            self._depth = 0
            self._rollback()
            if isinstance(exc, self._FAULTS):
                self._raise_unavailable(exc)
            raise
        self._depth = 0
        self.write_failure = None

    def _rollback(self) -> None:
        """Roll back whatever is open; after a failed COMMIT the database may already have."""
        if self._in_transaction():
            # Nothing left to undo if it fails: the next BEGIN starts clean.
            with contextlib.suppress(*self._FAULTS):
                self._db.execute("ROLLBACK")

    def _raise_unavailable(self, exc: BaseException) -> None:
        """StoreUnavailable for a fault outside this program; an error that is not about
        the database (a bug in a statement) is left to propagate as it is."""
        cause = self._classify(exc)
        if cause is not None:
            self.write_failure = (time.monotonic(), cause)
            raise StoreUnavailable(self.where, cause, self._detail(exc)) from exc

    def _detail(self, exc: BaseException) -> str:
        return str(exc)

    def _check_failing(self) -> None:
        """While writes fail, fail fast instead of waiting on every write (a tick makes
        many); :meth:`writable` probes for real."""
        failure = self.write_failure
        if failure is not None and time.monotonic() - failure[0] < FAIL_FAST_FOR:
            raise StoreUnavailable(self.where, failure[1], "an earlier write failed")

    def _one(self, name: str, *args: Any) -> Any:
        row = self._run(name, args).fetchone()
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
                self._run("probe_write", (self.now(),))
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
                cursor = self._run(
                    "upsert_watch",
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

    def remove_watches(self, job_ids: Iterable[str]) -> int:
        removed = 0
        now = self.now()
        with self.transaction():
            for job_id in job_ids:
                # Discovery must not make a removed watch again.
                self._run("tombstone_watch", {"job_id": job_id, "now": now})
                removed += self._run("delete_watch", (job_id,)).rowcount
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
            rows = self._run("queue_rows", (limit,)).fetchall()
            for row in rows:
                result = parse(row["job_id"], row["labels"], row["endpoints"])
                if isinstance(result, WatchSpec):
                    accepted.append(result)
                    self._run("queue_delete", (row["seq"],))
                else:
                    rejected.append((row["seq"], str(result)))
                    self._run("queue_reject", (str(result), row["seq"]))
            added, updated = self.add_watches(accepted, "queue") if accepted else (0, 0)
        return IntakeResult(added, updated, rejected)

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
        rows = self._run(query, (now, limit + len(exclude))).fetchall()
        found = [watch_from_row(row) for row in rows if row["job_id"] not in exclude]
        return found[:limit]

    def active_watches_among(self, job_ids: Sequence[str]) -> list[WatchRow]:
        rows = self._run("active_watches_among", (json.dumps(list(job_ids)),))
        return [watch_from_row(row) for row in rows]

    def oldest_active_create_time(self) -> int | None:
        value = self._one("oldest_active_create_time")
        return None if value is None else int(value)

    def newest_active_create_time(self) -> int | None:
        value = self._one("newest_active_create_time")
        return None if value is None else int(value)

    def get_watch(self, job_id: str) -> WatchRow | None:
        row = self._run("get_watch", (job_id,)).fetchone()
        return None if row is None else watch_from_row(row)

    def record_poll(
        self, detail: JobDetail, earliest: float, deadline: float, memory: JobMemory
    ) -> None:
        """A non-terminal answer: its status, and when to poll next (policy's plan)."""
        with self.transaction():
            self._run(
                "record_poll",
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
                    "last_data": dump_data(detail.raw),
                },
            )

    def record_poll_error(self, job_id: str, error: str, next_poll_at: float) -> None:
        with self.transaction():
            self._run(
                "record_poll_error",
                {"job_id": job_id, "error": error, "now": self.now(), "next_poll_at": next_poll_at},
            )

    def record_terminal(self, detail: JobDetail, event: Event, endpoints: Sequence[str]) -> bool:
        """Finish the watch, record the event and queue its deliveries: one transaction.

        Returns False when nothing new is queued: the job already had this event, or its
        watch is no longer active (expired, removed or finished while this answer was on its
        way: one event per job, and none for a watch that is gone).
        """
        now = self.now()
        state = WatchState.SUCCEEDED if detail.status == 20 else WatchState.FAILED
        with self.transaction():
            finished = self._run(
                "finish_watch",
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
                    "observed": 1,
                    "last_data": dump_data(detail.raw),
                },
            )
            if not finished.rowcount:
                return False
            return self._insert_event(event, endpoints, now)

    def _insert_event(self, event: Event, endpoints: Sequence[str], now: float) -> bool:
        """The event and one delivery per endpoint; False if the job had this event already
        (an event made again has its id: its row and deliveries stand, no seq is taken; one
        the state lost, on a promoted replica, is recorded and delivered under that id)."""
        self._run("lock_event_order")
        inserted = self._run(
            "insert_event",
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
            self._run("insert_delivery", (event.event_id, endpoint, now, now))
        return True

    def record_operational(self, event: Event, endpoints: Sequence[str]) -> None:
        """An event about the daemon itself and its deliveries: one transaction."""
        with self.transaction():
            self._insert_event(event, endpoints, self.now())

    def reject_watch(
        self, job_id: str, reason: str, event: Event, endpoints: Sequence[str]
    ) -> bool:
        """Stop polling a job the vendor rejects (unknown id), ``reason`` kept as its note,
        record its ``lip_sync.rejected`` event and queue its deliveries: one transaction.
        False if the watch is not active (nothing recorded)."""
        now = self.now()
        unseen = dict.fromkeys(("status", "progress", "create_time", "last_data"))
        args = {**unseen, "job_id": job_id, "msg": reason, "error": reason, "now": now}
        args |= {"state": WatchState.REJECTED.value, "polled": 1, "observed": 0}
        with self.transaction():
            if not self._run("finish_watch", args).rowcount:
                return False
            self._insert_event(event, endpoints, now)
        return True

    def expirable_watches(self, give_up_after: float) -> list[WatchRow]:
        """Watches past ``give_up_after`` whose last answer, that late, said not finished (to
        expire); the others past it are made due, so they get that last look first (a daemon
        that was down for longer must still report what finished meanwhile)."""
        now = self.now()
        args = {"now": now, "cutoff": now - give_up_after, "give_up_after": give_up_after}
        with self.transaction():
            rows = self._run("expirable_watches", args).fetchall()
            self._run("due_for_last_look", args)
        return [watch_from_row(row) for row in rows]

    def expire_watch(
        self, job_id: str, event: Event, endpoints: Sequence[str], cutoff: float
    ) -> bool:
        """Expire one watch added by ``cutoff`` (its last look said not finished), record its
        ``lip_sync.expired`` event and queue its deliveries: one transaction. False if it is
        not active, or younger than that by the stored time (a clock step moved it)."""
        now = self.now()
        with self.transaction():
            cursor = self._run("expire_watch", {"job_id": job_id, "now": now, "cutoff": cutoff})
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
            row = self._run(
                "record_rejection",
                {"job_id": job_id, "now": now, "retry_at": retry_at, "window": window},
            ).fetchone()
            if row is None:
                return None
            count, first = int(row[0]), float(row[1])
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
            msg = f"vendor rejected the id {count}x since {since}: {vendor_msg}"
            self._run("note_rejection", {"job_id": job_id, "msg": msg})
        return count, first, msg

    def shift_schedule(self, delta: float) -> None:
        """Move every pending poll, delivery and expiry by ``delta`` seconds: the system
        clock stepped, and what was due in a minute is still due in a minute (SQLite only)."""
        with self.transaction():
            self._run("shift_watch_schedule", {"delta": delta})
            self._run("shift_delivery_schedule", {"delta": delta})

    def prune(self, cutoff: float, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Forget one batch of history older than ``cutoff`` (``state.retention``): events
        whose deliveries are all settled (with their deliveries and attempts), finished
        watches (and ids discovery must not make again), rejected queue rows. Each kind in
        its own short transaction, so a long history is pruned a little at every
        housekeeping tick without stalling anything."""
        args = {"cutoff": cutoff, "batch": batch}
        with self.transaction():
            ids = [row[0] for row in self._run("old_settled_events", args)]
            if ids:
                listed = json.dumps(ids)
                self._run("prune_attempts", {"ids": listed})
                self._run("prune_deliveries", {"ids": listed})
                self._run("prune_events", {"ids": listed})
        with self.transaction():
            watches = self._run("prune_watches", args).rowcount
            self._run("prune_discovered_before", args)
        with self.transaction():
            rejected = self._run("prune_rejected", args).rowcount
        return {"events": len(ids), "watches": int(watches), "rejected": int(rejected)}

    def live_counts(self) -> tuple[int, int]:
        """(active watches, pending deliveries): two index range counts, cheap enough to
        run every few seconds whatever the size of the history."""
        return int(self._one("count_active")), int(self._one("count_pending_deliveries"))

    # -- events and deliveries ------------------------------------------------------------

    def due_deliveries(
        self, endpoint: str, now: float, limit: int, exclude: frozenset[int] = frozenset()
    ) -> list[DueDelivery]:
        rows = self._run("due_deliveries", (endpoint, now, limit + len(exclude))).fetchall()
        due = [due_from_row(row) for row in rows if row["id"] not in exclude]
        return due[:limit]

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
                row = self._run("get_event", (event_id,)).fetchone()
                if row is not None and route is not None:
                    named = row["watch_endpoints"]
                    watch_endpoints = None if named is None else tuple(json.loads(named))
                    for name in route(row["type"], watch_endpoints):
                        if endpoint is None or name == endpoint:
                            self._run("insert_delivery", (event_id, name, now, now))
                # Counts the rows just created too.
                args = {"event_id": event_id, "now": now, "endpoint": endpoint}
                query = "replay_event" if endpoint is None else "replay_event_endpoint"
                result[event_id] = self._run(query, args).rowcount
        return result

    def replay_dead(self) -> int:
        with self.transaction():
            return int(self._run("replay_dead", {"now": self.now()}).rowcount)

    def park_unconfigured(
        self, configured: Collection[str], removed: Collection[str] = ()
    ) -> dict[str, int]:
        """Pending deliveries of endpoints not in ``configured`` become dead, with the reason
        "endpoint removed" (for names in ``removed``) or "endpoint not configured".

        Returns {endpoint: rows parked}. A read first: nothing is written when all is well.
        """
        stray = [row[0] for row in self._run("pending_endpoints") if row[0] not in configured]
        parked: dict[str, int] = {}
        if not stray:
            return parked
        with self.transaction():
            for endpoint in stray:
                reason = ENDPOINT_REMOVED if endpoint in removed else ENDPOINT_NOT_CONFIGURED
                count = self._run(
                    "park_endpoint", {"endpoint": endpoint, "reason": reason}
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
                count = self._run("revive_endpoint", {"endpoint": endpoint, "now": now}).rowcount
                if count:
                    revived[endpoint] = count
        return revived

    def reopen_watch(self, job_id: str) -> bool:
        """An expired, failed or rejected watch is polled again, as if just added; its
        reopen count goes up, so its next event is a new event with an id of its own."""
        with self.transaction():
            args = {"job_id": job_id, "now": self.now()}
            return bool(self._run("reopen_watch", args).rowcount > 0)

    def make_due(self, job_id: str) -> bool:
        """Poll an active watch now rather than when planned (a vendor callback said it may
        have finished). On PostgreSQL every node hears of it, so the one that holds the vendor
        lease polls it at once. False when the watch is not active."""
        with self.transaction():
            args = {"job_id": job_id, "now": self.now()}
            return bool(self._run("make_due", args).rowcount > 0)

    def clear_rejected(self) -> int:
        with self.transaction():
            return int(self._run("queue_clear_rejected").rowcount)

    # -- wake-ups -------------------------------------------------------------------------

    def change_feed(self) -> ChangeFeed | None:
        """Notifications of what other sessions write (PostgreSQL); None for SQLite, whose
        single daemon notices other programs' writes at its ticks."""
        return None

    def session_id(self) -> int | None:
        """The database's id of this connection as notifications name it (None: no such)."""
        return None
