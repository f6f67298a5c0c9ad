"""``state migrate``: a SQLite state copied into PostgreSQL, all or nothing.

The source is read inside one ``BEGIN IMMEDIATE`` (a consistent snapshot that no CLI command
or producer can write past unseen); the target is written inside one transaction with its
state tables locked, so a failure or Ctrl-C anywhere leaves it as it was. Rows keep their
keys (deliveries their ids, so attempts still point at them; queue rows their order) and
their values exactly: times are doubles on both sides and bodies bytes. The statements are
in ``sql/sqlite/transfer.sql`` (reads) and ``sql/postgres/transfer.sql`` (writes).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from notifier.store.errors import StoreError
from notifier.store.postgres import PostgresBackend
from notifier.store.schema import SCHEMA_VERSION, named_queries
from notifier.store.sqlite import SqliteBackend
from notifier.store.state import Store

#: What is copied, in this order (a row's references are copied before it).
TABLES = (
    "watch_queue",
    "watches",
    "events",
    "deliveries",
    "delivery_attempts",
    "discovered",
    "vendor_token",
    "state_marks",
    "gateway_keys",
)
#: Tables of a few rows, upserted rather than copied (the target may hold its own).
UPSERTED = ("vendor_token", "state_marks", "gateway_keys")
#: Tables whose rows make a target "not empty": a copy never merges two states (a new
#: database holds its own token cache, marks and gateway key: the source's replace them).
STATE_TABLES = tuple(table for table in TABLES if table not in UPSERTED)
#: Tables of the schema left out on purpose, and why (a test holds every table to one list).
NOT_COPIED = {
    "leases": "a lease names a daemon of the source, which is stopped: nobody holds it",
    "write_probe": "the daemon's own write test",
    "file_listings": "which ids each node's watch file lists: each node lists its file anew",
    "file_listers": "when each node last kept its watch-file listing (see file_listings)",
    "schema_version": "the target's own schema record (PostgreSQL)",
    "sqlite_sequence": "SQLite's bookkeeping",
}
#: Rows per batch read from the source (memory stays flat for any size of state).
BATCH = 5000

#: ``progress(table, rows copied, seconds it took)`` after each table.
Progress = Callable[[str, int, float], None]


class TargetNotEmpty(StoreError):
    """The target already holds a state: merging two would mix two histories."""


@dataclass
class Summary:
    """What was copied: rows per table, and how they split, all counted in the target."""

    source: str
    target: str
    rows: dict[str, int]
    queue_rejected: int
    watches: dict[str, int]
    deliveries: dict[str, int]
    replaced: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "schema_version": SCHEMA_VERSION,
            "rows": self.rows,
            "queue": {
                "pending": self.rows["watch_queue"] - self.queue_rejected,
                "rejected": self.queue_rejected,
            },
            "watches": self.watches,
            "deliveries": self.deliveries,
            "replaced": self.replaced,
            "seconds": round(self.seconds, 3),
        }


def _counts(store: Store, queries: dict[str, str]) -> dict[str, int]:
    row = store._execute(queries["counts"]).fetchone()
    return {name: int(row[name]) for name in row.keys()}  # noqa: SIM118  # a row, not a dict


def copy_state(
    source: Store, target: Store, *, replace: bool = False, progress: Progress | None = None
) -> Summary:
    """Copy every row of ``source`` (SQLite) into ``target`` (PostgreSQL) in one transaction.

    Raises :class:`TargetNotEmpty` when the target holds watches, queue rows, events or
    deliveries (``replace``: they are deleted first, in the same transaction), and
    :class:`StoreError` when a row does not fit (the target is then unchanged).
    """
    source_db, target_db = source.backend, target.backend
    if not isinstance(source_db, SqliteBackend):
        raise StoreError(f"{source.where}: the source of a migration is a SQLite state file")
    if not isinstance(target_db, PostgresBackend):
        raise StoreError(f"{target.where}: the target of a migration is a PostgreSQL database")
    reads = named_queries("sqlite", "transfer.sql")
    writes = named_queries("postgres", "transfer.sql")
    started = time.monotonic()
    try:
        with source.transaction(), target.transaction():
            expected = _counts(source, reads)
            target._execute(writes["lock_tables"])
            present = _counts(target, writes)
            held = {table: present[table] for table in STATE_TABLES if present[table]}
            if held and not replace:
                raise TargetNotEmpty(
                    f"{target.where}: the database already holds a state ("
                    + ", ".join(f"{n} {table}" for table, n in held.items())
                    + "); a migration never merges two states: use an empty database, or "
                    "--replace to delete what it holds first"
                )
            if held:
                target._execute(writes["empty_tables"])
            for table in TABLES:
                began = time.monotonic()
                rows = _copy_table(source_db, target_db, table, reads, writes)
                if progress is not None:
                    progress(table, rows, time.monotonic() - began)
            target._execute(writes["restart_identities"])
            copied = _counts(target, writes)
            _check_counts(target.where, expected, copied)
            summary = Summary(
                source.where,
                target.where,
                {table: copied[table] for table in TABLES},
                copied["queue_rejected"],
                target.watch_counts(),
                target.delivery_counts(),
                held,
            )
    except psycopg.Error as exc:
        raise StoreError(
            f"{target.where}: the copy failed and was rolled back (the database is as it "
            f"was): {_pg_detail(target_db, exc)}"
        ) from exc
    except sqlite3.Error as exc:
        raise StoreError(
            f"{source.where}: cannot read the state (nothing was written): {exc}"
        ) from exc
    summary.seconds = time.monotonic() - started
    return summary


def _copy_table(
    source: SqliteBackend,
    target: PostgresBackend,
    table: str,
    reads: dict[str, str],
    writes: dict[str, str],
) -> int:
    """Stream one table: rows in batches from SQLite, COPY into PostgreSQL (some 30,000
    rows a second on 2 busy cores; the token, the marks and the keys, a handful of rows, are
    upserted)."""
    cursor = source.connection.cursor()
    cursor.row_factory = None  # plain tuples, in the column order of the COPY
    cursor.execute(reads[f"read_{table}"])
    count = 0
    with target.connection.cursor() as out:
        if table in UPSERTED:
            rows = cursor.fetchall()
            out.executemany(writes[f"copy_{table}"], rows)
            return len(rows)
        with out.copy(writes[f"copy_{table}"]) as copy:
            while batch := cursor.fetchmany(BATCH):
                for row in batch:
                    copy.write_row(row)
                count += len(batch)
    return count


def _check_counts(where: str, expected: dict[str, int], copied: dict[str, int]) -> None:
    """Every source row arrived (a token may meet the target's own for another account)."""
    wrong = [
        f"{table}: {expected[table]} read, {copied[table]} written"
        for table in TABLES
        if copied[table] != expected[table]
        and not (table in UPSERTED and copied[table] > expected[table])
    ]
    if wrong:
        raise StoreError(f"{where}: the copy does not add up, rolled back: " + "; ".join(wrong))


def _pg_detail(target: PostgresBackend, exc: psycopg.Error) -> str:
    """The server's message, the row it choked on (COPY's context) and the key at fault."""
    parts = [target.detail(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__]
    diag = getattr(exc, "diag", None)
    for extra in (
        getattr(diag, "message_detail", None),
        getattr(diag, "context", None),
    ):
        if extra:
            parts.append(target.detail(Exception(extra)))
    return "; ".join(parts)


__all__ = ["NOT_COPIED", "STATE_TABLES", "TABLES", "Summary", "TargetNotEmpty", "copy_state"]
