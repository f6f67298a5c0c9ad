"""What a database brings to the store: the :class:`Backend` protocol, and the rows and
cursors it hands back, typed for both drivers alike.

:class:`~notifier.store.base.StoreBase` holds one backend and does everything else once:
transactions, named queries, migrations, the reading of outages. A backend connects (and
reconnects), runs a statement, begins and rolls back, reads its schema version, says what
its driver's errors mean, and holds the cross-process token lock. Two exist: SQLite
(``sqlite.py``, the embedded default) and PostgreSQL (``postgres.py``, for several nodes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from notifier.store.postgres_listen import ChangeFeed
    from notifier.store.schema import Dialect


class Row(Protocol):
    """A row read by index or by column name, and ``dict(row)``: ``sqlite3.Row`` and the
    PostgreSQL backend's ``PgRow`` both are one."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What running a statement returns (either driver's cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


#: Runs one statement the store's way (outages read as :class:`StoreUnavailable`).
Execute = Callable[[str, Any], Cursor]


class Backend(Protocol):
    """One connection to one database, as :class:`~notifier.store.base.StoreBase` uses it."""

    #: The SQL of this backend (``sql/<dialect>/``, with ``sql/common/``).
    dialect: ClassVar[Dialect]
    #: Errors of the driver that may mean a fault outside this program (disk full, lock…).
    faults: ClassVar[tuple[type[BaseException], ...]]
    #: Errors of the driver that fail an open (reported as "cannot open state database").
    open_errors: ClassVar[tuple[type[BaseException], ...]]
    #: Whether a statement outside a transaction that meets an outage raises
    #: StoreUnavailable (PostgreSQL: a dropped connection is the usual one) rather than the
    #: driver's error (SQLite: callers catch DB_ERRORS around reads).
    outage_on_read: ClassVar[bool]
    #: Where the state is, for messages (never with a password).
    where: str

    @property
    def connection(self) -> Any:
        """The driver's connection (``state migrate`` streams through it; tests poke it)."""

    def execute(self, sql: str, args: Any, *, reconnect: bool) -> Cursor:
        """Run one statement. ``reconnect``: outside a transaction, a connection the server
        dropped is opened again first."""

    def begin(self) -> None: ...

    def in_transaction(self) -> bool: ...

    def rollback(self) -> None:
        """Roll back whatever is open; quietly (after a failed COMMIT the database may
        already have, and the next BEGIN starts clean anyway)."""

    def classify(self, exc: BaseException) -> str | None:
        """An operator's reading of a driver error, None for a bug in a statement."""

    def detail(self, exc: BaseException) -> str:
        """The error's text for a message (never with a password)."""

    def schema_version(self) -> int | None:
        """The state's schema version; None: no schema at all yet."""

    def set_schema_version(self, number: int) -> None: ...

    def migration_guard(
        self, transaction: Callable[[], AbstractContextManager[None]]
    ) -> AbstractContextManager[None]:
        """Held around the whole migration (PostgreSQL: one transaction under a lock, so
        two nodes starting at once do not both migrate)."""

    def opened(self) -> None:
        """Migrated: from now on the caller's settings (SQLite: its busy timeout)."""

    def close(self) -> None: ...

    def try_token_lock(self, execute: Execute) -> bool:
        """Take the cross-process lock around a vendor token fetch, without waiting."""

    def release_token_lock(self) -> None: ...

    def change_feed(self) -> ChangeFeed | None:
        """Notifications of what other sessions write; None when the database has none."""

    def session_id(self) -> int | None:
        """The database's id of this connection as notifications name it (None: no such)."""
