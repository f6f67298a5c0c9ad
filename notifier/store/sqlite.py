"""The SQLite backend: one file in WAL mode, the embedded default.

The daemon and CLI commands open the file side by side; the schema version is SQLite's
``PRAGMA user_version``; the token lock is an ``flock`` on a file beside the state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from notifier.store.errors import StoreError, StoreMissing, classify
from notifier.store.schema import Dialect, dialect

if TYPE_CHECKING:
    from notifier.store.backend import Cursor, Execute
    from notifier.store.postgres_listen import ChangeFeed

_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC


class SqliteBackend:
    """A connection to the state file."""

    dialect: ClassVar[Dialect] = dialect("sqlite")
    faults: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.OperationalError,)
    open_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, sqlite3.Error)
    outage_on_read: ClassVar[bool] = False

    def __init__(self, location: str | os.PathLike[str], *, busy_timeout: float, create: bool):
        self.path = Path(location)
        self.where = str(self.path)
        self._busy_timeout = busy_timeout
        self._token_fd: int | None = None
        if not create and not self.path.exists():
            raise StoreMissing(self.where)
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
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open state database: {exc}") from exc

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def opened(self) -> None:
        """Migrations wait up to 10 s for a lock; from here on, the caller's busy timeout."""
        self._db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    def close(self) -> None:
        self.release_token_lock()
        self._db.close()

    def execute(self, sql: str, args: Any, *, reconnect: bool) -> Cursor:
        return self._db.execute(sql, args)

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def in_transaction(self) -> bool:
        return bool(self._db.in_transaction)

    def rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(*self.faults):
                self._db.execute("ROLLBACK")

    def classify(self, exc: BaseException) -> str | None:
        return classify(exc) if isinstance(exc, sqlite3.Error) else None

    def detail(self, exc: BaseException) -> str:
        return str(exc)

    def schema_version(self) -> int:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def set_schema_version(self, number: int) -> None:
        self._db.execute(f"PRAGMA user_version = {number}")

    def migration_guard(
        self, transaction: Callable[[], AbstractContextManager[None]]
    ) -> AbstractContextManager[None]:
        """Nothing: SQLite has one writer at a time, and each migration is a transaction."""
        return contextlib.nullcontext()

    def try_token_lock(self, execute: Execute) -> bool:
        """An ``flock`` on a file beside the state: every process that opens a SQLite file
        runs on its host. The kernel drops it with the process (``kill -9`` included)."""
        if self._token_fd is not None:
            return False  # held through this store already
        try:
            fd = os.open(self.path.with_name(self.path.name + ".token-lock"), _LOCK_FLAGS, 0o600)
        except OSError:
            # No file can be made beside the state: then SQLite cannot write its WAL there
            # either, and the in-process lock is all there is.
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:
            os.close(fd)
            return True  # a filesystem without locks: as above
        self._token_fd = fd
        return True

    def release_token_lock(self) -> None:
        fd = self._token_fd
        if fd is not None:
            self._token_fd = None
            os.close(fd)  # closing the file releases the flock

    def change_feed(self) -> ChangeFeed | None:
        """None: the single daemon on a file notices other programs' writes at its ticks."""
        return None

    def session_id(self) -> int | None:
        return None


__all__ = ["SqliteBackend"]
