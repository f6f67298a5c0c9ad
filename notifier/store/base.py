"""What every part of the store builds on: one :class:`~notifier.store.backend.Backend`,
and the transactions, named queries, migrations and outage handling, once for both.

The intake queue, the watches, the terminal events, their deliveries and the cached vendor
token live in one database: a SQLite file (``sqlite.py``, the embedded default) or a
PostgreSQL database shared by several nodes (``postgres.py``). :class:`StoreBase` opens the
backend the location names and never needs to know which it is; the parts of
:class:`~notifier.store.state.Store` (``watches``, ``deliveries``, ``lease``, ``marks``,
``listings``) are written on it alone. Every write is a short transaction, so the daemon and
CLI commands never hold each other up for long.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from notifier.store.backend import Backend, Cursor
from notifier.store.errors import StoreError, StoreUnavailable
from notifier.store.schema import SCHEMA_VERSION, _split_sql

#: After a failed write, later writes fail at once for this long (``writable`` still probes).
FAIL_FAST_FOR = 1.0
#: Rows of each kind that one prune forgets at most.
PRUNE_BATCH = 500
#: What the migration that adds marks says: the first mark is written when it is applied.
CREATES_MARKS = "CREATE TABLE state_marks"
#: The mark written once, when the state is first created (or first opened by a program
#: that knows marks): ``since: start``.
CREATED_AT = "created_at"


def is_url(location: object) -> bool:
    """A PostgreSQL URL rather than a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_backend(location: str | os.PathLike[str], *, busy_timeout: float, create: bool) -> Backend:
    """The backend ``location`` names: a ``postgresql://`` URL or a SQLite file path. Only
    the one in use is imported: psycopg alone costs ~0.2 s a process."""
    if is_url(location):
        from notifier.store.postgres import PostgresBackend

        return PostgresBackend(location, busy_timeout=busy_timeout, create=create)
    from notifier.store.sqlite import SqliteBackend

    return SqliteBackend(location, busy_timeout=busy_timeout, create=create)


class StoreBase:
    """A connection to the state. Not thread-safe: one per thread or process."""

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
        self.backend = backend = open_backend(location, busy_timeout=busy_timeout, create=create)
        try:
            self._migrate()
            backend.opened()
        except backend.open_errors as exc:
            backend.close()
            raise StoreError(
                f"{backend.where}: cannot open state database: {backend.detail(exc)}"
            ) from exc
        except BaseException:
            backend.close()
            raise

    @property
    def where(self) -> str:
        """Where the state is, for messages (never with a password)."""
        return self.backend.where

    @property
    def _db(self) -> Any:
        """The driver's connection (``state migrate`` streams through it; tests poke it)."""
        return self.backend.connection

    def reopen(self, clock: Callable[[], float] = time.time) -> Self:
        """Another connection to the same state, for another thread: on the plain wall clock
        by default (the daemon's own clock looks for steps, on its loop only)."""
        return type(self)(self._location, clock=clock, busy_timeout=self._busy_timeout)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- migrations -----------------------------------------------------------------------

    def _migrate(self) -> None:
        """Up to date already: one read, no lock and no write (a read-only standby opens)."""
        backend = self.backend
        current = backend.schema_version()
        if current is not None:
            self._refuse_newer(current)
            if current == SCHEMA_VERSION:
                return
        with backend.migration_guard(self.transaction):
            version = backend.schema_version() or 0
            self._refuse_newer(version)
            applied = [(n, script) for n, script in backend.dialect.migrations if n > version]
            for number, script in applied:
                with self.transaction():
                    # One by one: a script runner might COMMIT our transaction.
                    for statement in _split_sql(script):
                        self._execute(statement)
                    backend.set_schema_version(number)
            if any(CREATES_MARKS in script for _, script in applied):
                # The state began now (or, older, learns marks now): ``since: start``.
                with self.transaction():
                    self._run("add_mark", {"name": CREATED_AT, "value": self.now()})

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: schema version {version} is newer than this program's "
                f"({SCHEMA_VERSION}); upgrade chanjing-notifier"
            )

    # -- statements and transactions ------------------------------------------------------

    def _execute(self, sql: str, args: Any = ()) -> Cursor:
        """Run one statement. Outside a transaction, a backend whose reads meet outages
        (PostgreSQL) reports one as :class:`StoreUnavailable`; inside one, the driver's
        error reaches :meth:`transaction`, which reads it."""
        backend = self.backend
        try:
            return backend.execute(sql, args, reconnect=not self._depth)
        except StoreUnavailable as exc:
            self.write_failure = (time.monotonic(), exc.cause)
            raise
        except backend.faults as exc:
            if not self._depth and backend.outage_on_read:
                self._raise_unavailable(exc)
            raise

    def _run(self, name: str, args: Any = ()) -> Cursor:
        """Run the named statement of this backend's ``queries.sql``."""
        return self._execute(self.backend.dialect.queries[name], args)

    def _one(self, name: str, *args: Any) -> Any:
        row = self._run(name, args).fetchone()
        return None if row is None else row[0]

    def _in_transaction(self) -> bool:
        return self.backend.in_transaction()

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
        backend = self.backend
        try:
            backend.begin()
        except backend.faults as exc:
            self._raise_unavailable(exc)
            raise
        self._depth = 1
        try:
            yield
            self._execute("COMMIT")
        except BaseException as exc:
            self._depth = 0
            backend.rollback()
            if isinstance(exc, backend.faults):
                self._raise_unavailable(exc)
            raise
        self._depth = 0
        self.write_failure = None

    def _raise_unavailable(self, exc: BaseException) -> None:
        """StoreUnavailable for a fault outside this program; an error that is not about
        the database (a bug in a statement) is left to propagate as it is."""
        cause = self.backend.classify(exc)
        if cause is not None:
            self.write_failure = (time.monotonic(), cause)
            raise StoreUnavailable(self.where, cause, self.backend.detail(exc)) from exc

    def _check_failing(self) -> None:
        """While writes fail, fail fast instead of waiting on every write (a tick makes
        many); :meth:`writable` probes for real."""
        failure = self.write_failure
        if failure is not None and time.monotonic() - failure[0] < FAIL_FAST_FOR:
            raise StoreUnavailable(self.where, failure[1], "an earlier write failed")

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
