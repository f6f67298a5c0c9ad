"""State files as older versions of the schema left them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notifier.store import Store, StoreError
from notifier.store.schema import _split_sql, dialect

NOW = 1_800_000_000.0

#: Indexes of older schemas that a later migration drops on purpose: SQLite's own index of
#: the events' UNIQUE (job_id, type), gone in schema 21 (an event is unique by its id).
DROPPED_INDEXES = frozenset({"sqlite_autoindex_events_2"})


def schema_1_file(path: Path) -> None:
    script = resources.files("notifier.store").joinpath("sql/sqlite/migration_001.sql").read_text()
    with sqlite3.connect(path) as db:
        db.executescript(script)
        db.execute("PRAGMA user_version = 1")
        db.executemany(
            "INSERT INTO watches (job_id, source, labels, endpoints, state, status, progress,"
            " create_time, added_at, last_poll_at, next_poll_at, polls)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("old-active", "queue", '{"customer": "acme"}', '["ops"]', "active", 10, 40,
                 1_799_999_000, NOW - 100, NOW - 5, NOW - 1, 7),
                ("old-done", "file", "{}", None, "succeeded", 20, 100,
                 1_799_999_000, NOW - 200, NOW - 50, None, 9),
            ],
        )  # fmt: skip
        body = json.dumps({"type": "lip_sync.succeeded", "data": {"id": "old-done"}})
        db.execute(
            "INSERT INTO events (event_id, job_id, type, created_at, body) VALUES (?, ?, ?, ?, ?)",
            ("evt_old", "old-done", "lip_sync.succeeded", NOW - 50, body.encode()),
        )
        db.executemany(
            "INSERT INTO deliveries (event_id, endpoint, state, attempts, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("evt_old", "ops", "pending", 2, NOW - 50, NOW - 1),
                ("evt_old", "team", "dead", 5, NOW - 50, None),
            ],
        )
        db.execute(
            "INSERT INTO vendor_token VALUES (?, ?, ?, ?)",
            ("http://vendor|app", "tok-old", NOW + 3600, NOW - 60),
        )
        db.execute(
            "INSERT INTO watch_queue (job_id, labels, endpoints) VALUES (?, ?, ?)",
            ("queued-1", '{"a": "b"}', '["ops"]'),
        )


def sqlite_state_at(path: Path, version: int) -> sqlite3.Connection:
    """A SQLite state as schema ``version`` left it (its migrations run, nothing after): an
    old state to fill and hand to today's Store."""
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in dialect("sqlite").migrations:
        if number <= version:
            for statement in _split_sql(script):
                db.execute(statement)
    db.execute(f"PRAGMA user_version = {int(version)}")
    return db


@contextmanager
def postgres_state_at(pg_url: str, version: int) -> Iterator[psycopg.Connection[Any]]:
    """The PostgreSQL database at ``pg_url`` as schema ``version`` left it (autocommit)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        for number, script in dialect("postgres").migrations:
            if number <= version:
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (%s, now())", (number,))
        yield conn


@contextmanager
def migration_blocked(path: Path, table: str, version: int) -> Iterator[sqlite3.Connection]:
    """A table named ``table`` in the way of a late statement of the migration after
    ``version`` (of the SQLite state at ``path``): opening the store fails naming it, and the
    state is still at ``version``. Yields a connection to that old state for the caller's
    checks, then removes the obstacle, so the next open upgrades."""
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table} (x INTEGER)")
    with pytest.raises(StoreError, match=f"{table} already exists"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == version
        yield db
        db.execute(f"DROP TABLE {table}")


def table_rows(
    execute: Callable[[str], Sequence[Sequence[Any]]],
    tables: Mapping[str, str],
    columns: Mapping[str, Sequence[str]],
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` ({table: ORDER BY}), ``columns`` of each, as plain tuples
    (PostgreSQL's bytea as bytes): what a migration must leave unchanged."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table, order in tables.items():
        rows = execute(f"SELECT {', '.join(columns[table])} FROM {table} ORDER BY {order}")
        found[table] = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows
        ]
    return found
