"""The PostgreSQL backend (psycopg 3): a database several daemons may share.

One synchronous connection per :class:`PostgresBackend`, in autocommit mode so that the
store's :meth:`~notifier.store.base.StoreBase.transaction` brackets writes with its own
BEGIN … COMMIT and a read outside one holds no snapshot open. A connection the server
dropped (restart, failover, terminated backend) is opened again by the next call; until then
calls raise :class:`StoreUnavailable` ("the database server is unreachable") and the daemon
pauses as for a full disk.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from notifier.store.errors import (
    UNREPLICATED_CAUSE,
    StoreError,
    StoreMissing,
    StoreUnavailable,
    classify_pg,
)
from notifier.store.schema import Dialect, dialect

if TYPE_CHECKING:
    from notifier.store.backend import Cursor, Execute
    from notifier.store.postgres_listen import ChangeFeed

#: Key of the advisory lock held while migrating: nodes starting at once migrate in turn.
MIGRATION_LOCK = 0x6368616E6A696E67  # "chanjing"
#: Key of the session-level advisory lock held while a vendor token is fetched: one fetch
#: at a time across nodes, since issuing a token revokes the one the others use.
TOKEN_LOCK = 0x63686A2D746F6B6E  # "chj-tokn"
#: How long opening a connection may take before the server counts as unreachable.
CONNECT_TIMEOUT = 5
#: The longest one statement of a daemon's connection may run (its store waits less than
#: this for locks; CLI commands, which wait longer and run on no event loop, get none). A
#: statement stalled on an overloaded server, a ``pg_sleep`` in someone's trigger or a lost
#: answer would otherwise hold the daemon's loop up to the systemd watchdog (WatchdogSec=30s,
#: pinged every 15 s): 3 s is well below that even for a few such statements in a row, and
#: far above anything the daemon runs on a healthy server (indexed, batched statements of a
#: few ms). Its expiry (57014) is an outage like an unreachable server: pause, probe, resume.
STATEMENT_TIMEOUT = 3.0
#: The server's statement_timeout does not cover a COMMIT waiting for a synchronous standby
#: (seen on PostgreSQL 15: a COMMIT with a standby named that never connects waits forever
#: under statement_timeout = 2 s). A statement still running this long after it was sent is
#: cancelled from here; the server then ends the wait with a WARNING ("canceling wait for
#: synchronous replication"), the transaction committed here but not on the standby.
CLIENT_CANCEL_AFTER = STATEMENT_TIMEOUT + 1.0
_UNREPLICATED = "canceling wait for synchronous replication"


class _Canceller:
    """One thread for the process that cancels statements running past their bound: a
    Timer per statement would start a thread for each of thousands a minute."""

    def __init__(self) -> None:
        self._running: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def bound(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        key = id(conn)
        with self._wake:
            self._running[key] = (time.monotonic() + seconds, conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="statement canceller", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._wake:
                self._running.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                late = [c for due, c in self._running.values() if due <= now]
                for conn in late:
                    self._running.pop(id(conn), None)
                soonest = min((due for due, _ in self._running.values()), default=now + 1.0)
                if not late:
                    self._wake.wait(max(0.05, min(soonest - now, 1.0)))
            for conn in late:
                with contextlib.suppress(Exception):  # the statement may have ended meanwhile
                    conn.cancel_safe(timeout=CONNECT_TIMEOUT)


_CANCELLER = _Canceller()


def connection_options(application_name: str) -> dict[str, Any]:
    """How every connection of ours is opened (the store's, the listener's)."""
    return {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": CONNECT_TIMEOUT,
        # A server gone without a word (power cut, dropped route) must not hold a call on
        # the daemon's loop until TCP gives up (minutes): unacknowledged data and a silent
        # idle connection both fail within seconds.
        "tcp_user_timeout": CONNECT_TIMEOUT * 1000,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 2,
        "keepalives_count": 3,
    }


class PgRow(tuple[Any, ...]):
    """A row read by index or by column name, and ``dict(row)``: like ``sqlite3.Row``."""

    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    return type("PgRow", (PgRow,), {"_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> Any:
    """psycopg's row factory: one row class per column list (cached), built from a tuple."""
    description = cursor.description
    if description is None:
        return tuple
    return _row_class(tuple(column.name for column in description))


def describe(url: str) -> tuple[str, str | None]:
    """``postgresql://user@host:port/db`` for messages, and the password to keep out of them."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        raise StoreError("state.url: not a valid postgresql:// URL") from None
    user = params.get("user") or getpass.getuser()
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    name = params.get("dbname") or user
    password = params.get("password")
    return f"postgresql://{user}@{host}:{port}/{name}", str(password) if password else None


class PostgresBackend:
    """A connection to the state in a PostgreSQL database."""

    dialect: ClassVar[Dialect] = dialect("postgres")
    faults: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)
    open_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)
    outage_on_read: ClassVar[bool] = True

    def __init__(self, location: str | os.PathLike[str], *, busy_timeout: float, create: bool):
        self.url = str(location)
        self.where, self._password = describe(self.url)
        self._busy_timeout = busy_timeout
        self._db: psycopg.Connection[Any] | None = None
        self._token_locked = False
        self._unbounded = False
        try:
            self._connect()
            if not create and not self._has_schema():
                raise StoreMissing(
                    self.where,
                    "no state tables in this database (the daemon creates them when it first runs)",
                )
        except psycopg.Error as exc:
            self.close()
            raise StoreError(
                f"{self.where}: cannot open state database: {self.detail(exc)}"
            ) from exc
        except BaseException:
            self.close()
            raise

    @property
    def connection(self) -> psycopg.Connection[Any]:
        assert self._db is not None
        return self._db

    def _connect(self) -> None:
        self._db = psycopg.connect(
            self.url, row_factory=_row_factory, **connection_options("chanjing-notifier")
        )
        # lock_timeout 0 would mean "wait forever": the daemon's loop must never.
        millis = max(1, int(self._busy_timeout * 1000))
        self._db.execute(f"SET lock_timeout = {millis}")
        self._db.execute(f"SET statement_timeout = {int(self._statement_timeout() * 1000)}")
        self._unreplicated = False
        self._unbounded = False
        self._db.add_notice_handler(self._notice)

    def _notice(self, notice: Any) -> None:
        if str(notice.message_primary or "").startswith(_UNREPLICATED):
            self._unreplicated = True

    def _send(self, sql: str, params: Any) -> Any:
        """One statement; a daemon's is cancelled from here if it outlasts
        CLIENT_CANCEL_AFTER. A write committed here that the synchronous standby did not
        confirm in time is an outage (StoreUnavailable, like an unreachable server): its
        retries are safe, every write of the daemon being idempotent."""
        conn = self.connection
        if not self._statement_timeout() or self._unbounded:
            return conn.execute(sql, params)
        with _CANCELLER.bound(conn, CLIENT_CANCEL_AFTER):
            cursor = conn.execute(sql, params)
        if self._unreplicated:
            self._unreplicated = False
            raise StoreUnavailable(
                self.where,
                UNREPLICATED_CAUSE,
                f"committed here, not confirmed by a synchronous standby within "
                f"{CLIENT_CANCEL_AFTER:g}s",
            )
        return cursor

    def _statement_timeout(self) -> float:
        """STATEMENT_TIMEOUT for a store that waits less than that for locks (the daemon's,
        the lease keeper's); 0 (none) for the CLI's, whose copies may take minutes."""
        return STATEMENT_TIMEOUT if self._busy_timeout < STATEMENT_TIMEOUT else 0.0

    def opened(self) -> None:
        pass

    def close(self) -> None:
        if self._db is not None:
            self.release_token_lock()  # at once: the server would only as the session ends
            self._db.close()

    def try_token_lock(self, execute: Execute) -> bool:
        """A session-level advisory lock on this store's connection: the server drops it with
        the session, so a node that dies (or whose connection drops) mid-fetch frees it."""
        if self._token_locked:
            return False  # held through this store already (locks nest in one session)
        row = execute("SELECT pg_try_advisory_lock(%s)", (TOKEN_LOCK,)).fetchone()
        self._token_locked = bool(row and row[0])
        return self._token_locked

    def release_token_lock(self) -> None:
        if not self._token_locked:
            return
        self._token_locked = False
        conn = self.connection
        if conn.closed or conn.broken:
            return  # the server dropped it with the session
        with contextlib.suppress(psycopg.Error):  # if the session is gone, so is the lock
            conn.execute("SELECT pg_advisory_unlock(%s)", (TOKEN_LOCK,))

    def change_feed(self) -> ChangeFeed:
        from notifier.store.postgres_listen import ChangeFeed

        return ChangeFeed(self.url, self.where, self._password)

    def session_id(self) -> int | None:
        conn = self.connection
        return None if conn.closed or conn.broken else conn.info.backend_pid

    def _has_schema(self) -> bool:
        row = self.connection.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        found = row.fetchone()
        return bool(found and found[0])

    # -- what the store runs --------------------------------------------------------------

    def execute(self, sql: str, args: Any, *, reconnect: bool) -> Cursor:
        params = args or None  # none: a literal % stays itself
        if reconnect:
            self._ensure_connected()
        cursor: Cursor = self._send(sql, params)
        return cursor

    def _ensure_connected(self) -> None:
        """A connection the server dropped is opened anew (the server restarted)."""
        conn = self.connection
        if not (conn.closed or conn.broken):
            return
        conn.close()
        self._connect()

    def begin(self) -> None:
        self._ensure_connected()
        self.connection.execute("BEGIN")

    def in_transaction(self) -> bool:
        conn = self.connection
        status = conn.info.transaction_status
        return not conn.closed and status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def rollback(self) -> None:
        if self.in_transaction():
            with contextlib.suppress(psycopg.Error):
                self.connection.execute("ROLLBACK")

    def classify(self, exc: BaseException) -> str | None:
        return classify_pg(exc) if isinstance(exc, psycopg.Error) else None

    def detail(self, exc: BaseException) -> str:
        text = str(exc).strip()
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def schema_version(self) -> int | None:
        """None before the first migration (no ``schema_version`` table): a read, no lock
        and no write, so a read-only standby that is up to date opens."""
        if not self._has_schema():
            return None
        row = self.connection.execute("SELECT max(version) FROM schema_version").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def set_schema_version(self, number: int) -> None:
        self.connection.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (%s, now())", (number,)
        )

    def migration_guard(
        self, transaction: Callable[[], AbstractContextManager[None]]
    ) -> AbstractContextManager[None]:
        return self._migration_guard(transaction)

    @contextlib.contextmanager
    def _migration_guard(
        self, transaction: Callable[[], AbstractContextManager[None]]
    ) -> Iterator[None]:
        with transaction():
            conn = self.connection
            # A migration runs to its end, however big the tables (this transaction only).
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
            )
            self._unbounded = True
            try:
                yield
            finally:
                self._unbounded = False


__all__ = ["MIGRATION_LOCK", "PgRow", "PostgresBackend", "connection_options", "describe"]
