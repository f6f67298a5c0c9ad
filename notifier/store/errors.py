"""What goes wrong with the state, in an operator's words: disk full, read-only, locked,
the database server unreachable."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


class StoreError(Exception):
    """The state cannot be opened or is from a newer version."""


class StoreMissing(StoreError):
    """The state does not exist (and the caller asked not to create it): no SQLite file, or
    a PostgreSQL database without our tables."""

    def __init__(
        self,
        where: str | Path,
        what: str = "no state file (the daemon creates it when it first runs)",
    ) -> None:
        self.where = str(where)
        super().__init__(f"{where}: {what}")


def prepare_state_dir(path: Path) -> None:
    """Create the state's directory only when it is the documented default: a missing
    directory anywhere else is most likely a typo in ``state.path``, and starting on an
    empty state there would silently forget every watch."""
    parent = path.absolute().parent
    if parent.is_dir():
        return
    if parent == default_state_path().parent:
        parent.mkdir(parents=True, exist_ok=True)
        return
    raise StoreError(
        f"{path}: directory {parent} does not exist (state.path mistyped?); create it first"
    )


#: The documented default ``state.path`` (the config's default: a test holds them equal; the
#: store reads no config section).
DEFAULT_STATE_PATH = Path("/var/lib/chanjing-notifier/state.db")


def default_state_path() -> Path:
    """The documented default ``state.path``."""
    return DEFAULT_STATE_PATH


class StoreUnavailable(StoreError):
    """A write to the state failed for a reason outside this program (disk full, read-only,
    locked by another writer, I/O error, server unreachable). Nothing was written; the caller
    tries again later."""

    def __init__(self, where: str | Path, cause: str, detail: str) -> None:
        self.where = str(where)
        self.cause = cause
        super().__init__(f"{where}: cannot write the state database: {cause} ({detail})")


if TYPE_CHECKING:
    #: What a read or write of the state may raise at run time: disk full, I/O error,
    #: "database is locked" after the busy timeout, the server gone (as StoreUnavailable, or
    #: raw from a read). Callers that must survive it catch these.
    DB_ERRORS: tuple[type[Exception], ...]
else:

    def __getattr__(name: str) -> object:
        # psycopg costs ~0.2 s to import: only what names DB_ERRORS (the daemon) or opens a
        # PostgreSQL state pays it, not every CLI command on a SQLite state.
        if name == "DB_ERRORS":
            import psycopg

            value = (sqlite3.Error, psycopg.Error, OSError, StoreError)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: SQLite's error names → what an operator should read.
_CAUSES = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the file or its directory is read-only",
    "SQLITE_READONLY_DIRECTORY": "the file or its directory is read-only",
    "SQLITE_READONLY_RECOVERY": "the file or its directory is read-only",
    "SQLITE_READONLY_CANTLOCK": "the file or its directory is read-only",
    "SQLITE_READONLY_DBMOVED": "the file was moved or deleted while open",
    "SQLITE_BUSY": "another process holds a write lock on it",
    "SQLITE_LOCKED": "another process holds a write lock on it",
    "SQLITE_CANTOPEN": "it cannot be opened (directory missing or not accessible)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_IOERR": "an I/O error",
}


#: The cause :func:`classify` gives for another writer's lock.
BUSY_CAUSE = _CAUSES["SQLITE_BUSY"]


def classify(exc: sqlite3.Error) -> str | None:
    """An operator's reading of a SQLite error (disk full, read-only, locked, I/O error), or
    None for an error that is not about the file (a bug in a statement)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, cause in _CAUSES.items():
        if name == prefix or name.startswith(prefix + "_"):
            return cause
    text = str(exc).lower()
    if "full" in text:
        return _CAUSES["SQLITE_FULL"]
    if "readonly" in text or "read-only" in text:
        return _CAUSES["SQLITE_READONLY"]
    if "locked" in text or "busy" in text:
        return _CAUSES["SQLITE_BUSY"]
    if "i/o" in text or "disk" in text:
        return _CAUSES["SQLITE_IOERR"]
    return None


UNREACHABLE_CAUSE = "the database server is unreachable"
#: A statement of ours ran past ``statement_timeout`` (SQLSTATE 57014 for that reason).
SLOW_CAUSE = "the database server does not answer in time (statement timeout)"
#: A write committed on the primary that its synchronous standby did not confirm in time.
UNREPLICATED_CAUSE = "the synchronous standby does not confirm writes (replication stalled)"


@functools.cache
def _pg_causes() -> tuple[tuple[type[psycopg.Error], str], ...]:
    """What PostgreSQL's errors mean to an operator; the first class that matches wins."""
    import psycopg
    from psycopg import errors as pg_errors

    return (
        (pg_errors.DiskFull, _CAUSES["SQLITE_FULL"]),
        (pg_errors.ReadOnlySqlTransaction, "the database is read-only (a standby?)"),
        (pg_errors.LockNotAvailable, BUSY_CAUSE),
        (pg_errors.SerializationFailure, BUSY_CAUSE),
        (pg_errors.DeadlockDetected, BUSY_CAUSE),
        # 57014: statement_timeout (SLOW_CAUSE, see classify_pg) or a cancel request.
        (pg_errors.QueryCanceled, BUSY_CAUSE),
        (pg_errors.InsufficientPrivilege, _CAUSES["SQLITE_PERM"]),
        # Connection refused or lost, server shutting down or starting, too many connections.
        (psycopg.OperationalError, UNREACHABLE_CAUSE),
        (psycopg.InterfaceError, UNREACHABLE_CAUSE),
    )


def classify_pg(exc: psycopg.Error) -> str | None:
    """An operator's reading of a PostgreSQL error, or None for an error that is not about
    the server (a bug in a statement)."""
    from psycopg import errors as pg_errors

    if isinstance(exc, pg_errors.QueryCanceled) and "statement timeout" in str(exc):
        return SLOW_CAUSE
    for kind, cause in _pg_causes():
        if isinstance(exc, kind):
            return cause
    return None
