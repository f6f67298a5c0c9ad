"""What other nodes and programs change in a shared PostgreSQL state, as it happens.

Triggers (``sql/postgres/migration_011.sql``) ``NOTIFY`` the channel ``chanjing_notifier`` with
the kind of change: ``queue`` (a row INSERTed into ``watch_queue``), ``watch`` (a new or reopened
watch), ``delivery`` (deliveries new or pending again). A :class:`ChangeFeed` LISTENs on a
connection of its own, an **async** one, so waiting costs the daemon's event loop nothing.

A notification is a shortcut, never the only path: one sent while nobody listened is lost
(PostgreSQL keeps none for later), so the daemon's ticks still find everything.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg

from notifier.store.errors import UNREACHABLE_CAUSE, StoreUnavailable, classify_pg
from notifier.store.postgres import connection_options

CHANNEL = "chanjing_notifier"
#: The payloads the triggers send.
KINDS = ("queue", "watch", "delivery")


@dataclass(frozen=True)
class Change:
    """One notification: the kind of change, and the server process (backend pid) of the
    session that made it (a daemon skips its own: it woke itself already)."""

    kind: str
    pid: int


class ChangeFeed:
    """Opens listening connections to one database (see :meth:`listen`)."""

    def __init__(self, url: str, where: str, password: str | None) -> None:
        self._url = url
        self.where = where
        self._password = password

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[Change]]:
        """A fresh connection that LISTENs; yields the changes from then on, forever.

        :class:`StoreUnavailable` when the connection cannot be made or drops (a server
        restart, ``pg_terminate_backend``, a lost route): the caller connects again.
        """
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, **connection_options("chanjing-notifier listen")
            )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                raise self._unavailable(exc) from exc
            yield self._changes(conn)
        finally:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _changes(self, conn: psycopg.AsyncConnection[object]) -> AsyncIterator[Change]:
        try:
            async for notify in conn.notifies():
                yield Change(notify.payload, notify.pid)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        # notifies() without a timeout ends only with its connection.
        raise StoreUnavailable(self.where, UNREACHABLE_CAUSE, "the listening connection closed")

    def _unavailable(self, exc: psycopg.Error) -> StoreUnavailable:
        detail = str(exc).strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreUnavailable(self.where, classify_pg(exc) or UNREACHABLE_CAUSE, detail)


__all__ = ["CHANNEL", "KINDS", "Change", "ChangeFeed"]
