"""Schema 19 (issue 22): a watch belongs to a vendor account. A state of schema 18 (before
accounts) migrates with every old column of every row unchanged and every row the account
``default``'s, on SQLite and PostgreSQL; a migration that fails half-way on SQLite leaves the
old state as it was, readable by the old program and upgraded by the next open."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.models import DEFAULT_ACCOUNT, WatchSpec
from notifier.store import Store, StoreError
from notifier.store.transfer import copy_state
from tests.kit import SmallDisk, StoreFactory, small_disk
from tests.kit.schema import (
    DROPPED_INDEXES,
    migration_blocked,
    postgres_state_at,
    sqlite_state_at,
    table_rows,
)

#: Watches in the old state: enough that the SQLite table rebuild is a real copy.
WATCHES = 3000
#: The old tables and, for each, what orders its rows.
OLD_TABLES = {
    "watches": "kind, job_id",
    "watch_queue": "seq",
    "events": "event_id",
    "deliveries": "id",
    "delivery_attempts": "id",
    "discovered": "kind, job_id",
    "file_listings": "node, kind, job_id",
    "state_marks": "name",
}
#: The tables that have an account column from schema 19 on.
ACCOUNT_TABLES = ("watches", "watch_queue", "events", "discovered", "file_listings")


def test_the_same_id_and_kind_on_two_accounts_is_two_watches(make_store: StoreFactory) -> None:
    store = make_store()
    added = store.add_watches(
        [WatchSpec("j1", labels={"a": "1"}), WatchSpec("j1", labels={"b": "2"}, account="acme")],
        "queue",
    )
    assert added == (2, 0)
    mine, theirs = store.get_watch("j1"), store.get_watch("j1", account="acme")
    assert mine is not None and mine.labels == {"a": "1"}
    assert theirs is not None and theirs.labels == {"b": "2"}
    assert store.get_watch("j1", account="other") is None
    # Updating one account's watch leaves the other's as it was.
    assert store.add_watches([WatchSpec("j1", labels={"c": "3"}, account="acme")], "queue") == (
        0,
        1,
    )
    mine = store.get_watch("j1", account=DEFAULT_ACCOUNT)
    assert mine is not None and mine.labels == {"a": "1"}
    # Removing one account's watch removes only it (and tombstones only it).
    assert store.remove_watches(["j1"], account="acme") == 1
    assert store.get_watch("j1", account="acme") is None
    assert store.get_watch("j1") is not None
    tombstones = store._execute("SELECT account, kind, job_id FROM discovered").fetchall()
    assert [tuple(r) for r in tombstones] == [("acme", "lip_sync", "j1")]


def _old_rows() -> dict[str, list[tuple[Any, ...]]]:
    """A schema-18 state's rows: many watches of two kinds and every status, a queue,
    events (a job's and the daemon's own), deliveries and attempts, discovery's tombstones
    and marks, a file listing."""
    watches = []
    for i in range(WATCHES):
        status = [0, 10, 20, 30, None][i % 5]
        state = {20: "succeeded", 30: "failed"}.get(status, "active")  # type: ignore[arg-type]
        phase = {0: "queued", 10: "running", 20: "succeeded", 30: "failed"}.get(status)  # type: ignore[arg-type]
        kind = "video" if i % 4 == 0 else "lip_sync"
        data = None if status is None else json.dumps({"status": status})
        endpoints = '["ops"]' if i % 3 == 0 else None
        watches.append(
            (kind, f"job-{i:05d}", "queue", json.dumps({"n": str(i)}), endpoints, state,
             status, i % 100, f"msg {i}", 1_700_000_000 + i, 1_800_000_000.5 + i, 3, 2,
             i % 5, data, i % 2, phase)
        )  # fmt: skip
    return {
        "watches": watches,
        "watch_queue": [(1, "queued-1", '{"k": "v"}', None, 1.5, None, "video"),
                        (2, "bad id", None, None, 2.5, "job id must not contain spaces",
                         "lip_sync")],
        "events": [("evt_1", "job-00002", "lip_sync.succeeded", 3.0, b'{"a": 1}', 2.0, 1,
                    "lip_sync"),
                   ("evt_ops", "ops:1", "vendor.failing", 4.0, b"{}", None, 2, None)],
        "deliveries": [(1, "evt_1", "ops", "pending", 2, 3.0, 9.0),
                       (2, "evt_ops", "team", "dead", 5, 4.0, None)],
        "delivery_attempts": [(1, 1, 0, 3.5, 0.25, 503, "busy", "failed")],
        "discovered": [("lip_sync", "job-gone", 1_700_000_000, 5.0),
                       ("video", "job-gone", 1_700_000_001, 6.0)],
        "file_listings": [("n1", "lip_sync", "job-00001"), ("n1", "video", "job-00000")],
        "state_marks": [("discovery_covered", 7.0), ("discovery_covered:video", 8.0)],
    }  # fmt: skip


INSERTS = {
    "watches": "INSERT INTO watches (kind, job_id, source, labels, endpoints, state, status, "
    "progress, msg, create_time, added_at, polls, errors, misses, last_data, reopens, phase) "
    "VALUES ({})",
    "watch_queue": "INSERT INTO watch_queue (seq, job_id, labels, endpoints, enqueued_at, "
    "rejected, kind) VALUES ({})",
    "events": "INSERT INTO events (event_id, job_id, type, created_at, body, "
    "last_seen_running_at, seq, kind) VALUES ({})",
    "deliveries": "INSERT INTO deliveries (id, event_id, endpoint, state, attempts, "
    "created_at, next_attempt_at) VALUES ({})",
    "delivery_attempts": "INSERT INTO delivery_attempts (id, delivery_id, generation, "
    "started_at, duration, status, error, outcome) VALUES ({})",
    "discovered": "INSERT INTO discovered (kind, job_id, create_time, at) VALUES ({})",
    "file_listings": "INSERT INTO file_listings (node, kind, job_id) VALUES ({})",
    "state_marks": "INSERT INTO state_marks (name, value) VALUES ({})",
}

#: The columns of each old table at schema 18 (read from a schema-18 SQLite state).
OLD_COLUMNS: dict[str, list[str]] = {}


def _snapshot(execute: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the old tables, every old column (the ones schema 18 had)."""
    return table_rows(execute, OLD_TABLES, OLD_COLUMNS)


def _schema_18_sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite_state_at(path, 18)
    for table in OLD_TABLES:
        OLD_COLUMNS[table] = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    return db


def _fill(execute_many: Any, placeholder: str) -> None:
    for table, rows in _old_rows().items():
        marks = ", ".join([placeholder] * len(rows[0]))
        execute_many(INSERTS[table].format(marks), rows)


def _old_sqlite_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = _schema_18_sqlite(path)
    _fill(db.executemany, "?")
    before = _snapshot(lambda sql: db.execute(sql).fetchall())
    db.close()
    return before


def _check_upgraded(store: Store, before: dict[str, list[tuple[Any, ...]]]) -> None:
    after = _snapshot(lambda sql: store._execute(sql).fetchall())
    assert after == before  # every old column of every row as it was
    for table in ACCOUNT_TABLES:
        rows = store._execute(f"SELECT DISTINCT account FROM {table}").fetchall()
        assert [r[0] for r in rows] == ["default"], table
    marks = [r[0] for r in store._execute("SELECT name FROM state_marks").fetchall()]
    assert {"discovery_covered", "discovery_covered:video"} <= set(marks)  # names kept
    # The daemon reads the upgraded rows as before.
    watch = store.get_watch("job-00001")
    assert watch is not None and (watch.kind, watch.status) == ("lip_sync", 10)
    assert store.get_watch("job-00000", kind="video") is not None
    history = store.event_history("evt_1")
    assert history is not None and history["kind"] == "lip_sync"


def test_a_schema_18_sqlite_state_migrates_with_every_row_the_default_accounts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    before = _old_sqlite_state(path)
    with sqlite3.connect(path) as db:
        indexes_before = {
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    with Store(path) as store:
        _check_upgraded(store, before)
        names = store._execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        # Every index kept (but those a later schema drops on purpose).
        assert indexes_before - DROPPED_INDEXES <= {r[0] for r in names}
        # Keyed by (account, kind, job_id): another account's row of the same id and kind.
        store._execute(
            "INSERT INTO watches (account, kind, job_id, source, added_at) "
            "VALUES ('acme', 'lip_sync', 'job-00001', 'queue', 1.0)"
        )
        rows = store._execute("SELECT account FROM watches WHERE job_id = 'job-00001'")
        assert sorted(r[0] for r in rows.fetchall()) == ["acme", "default"]


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def test_a_statement_failing_half_way_through_migration_19_leaves_the_old_state(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    before = _old_sqlite_state(path)
    # A table in the way of a late statement of migration 19 (after the watches rebuild
    # and the queue and events columns): the whole migration must roll back.
    with migration_blocked(path, "discovered_v19", 18) as db:
        assert _snapshot(lambda sql: db.execute(sql).fetchall()) == before
        columns = {r[1] for r in db.execute("PRAGMA table_info(watches)")}
        assert "account" not in columns
    with Store(path) as store:  # the obstacle gone, the next open upgrades
        _check_upgraded(store, before)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "small", "3m") as d:
        yield d


def test_a_full_disk_during_migration_19_leaves_the_old_state_readable(disk: SmallDisk) -> None:
    path = disk.path / "old.db"
    before = _old_sqlite_state(path)
    disk.fill()
    with pytest.raises(StoreError, match=r"(?i)full"):
        Store(path)
    disk.free()
    assert _user_version(path) == 18
    with sqlite3.connect(path) as db:
        assert _snapshot(lambda sql: db.execute(sql).fetchall()) == before
    with Store(path) as store:
        _check_upgraded(store, before)


def test_a_schema_18_postgres_state_migrates_with_every_row_the_default_accounts(
    tmp_path: Path, pg_url: str
) -> None:
    _schema_18_sqlite(tmp_path / "columns.db").close()  # the old column lists
    with postgres_state_at(pg_url, 18) as conn:
        with conn.cursor() as cursor:
            _fill(cursor.executemany, "%s")
        before = _snapshot(lambda sql: conn.execute(sql).fetchall())
    with Store(pg_url) as store:
        _check_upgraded(store, before)
        store._execute(
            "INSERT INTO watches (account, kind, job_id, source, added_at) "
            "VALUES ('acme', 'lip_sync', 'job-00001', 'queue', 1.0)"
        )
        rows = store._execute("SELECT account FROM watches WHERE job_id = 'job-00001'")
        assert sorted(r[0] for r in rows.fetchall()) == ["acme", "default"]


def test_state_migrate_copies_each_rows_account(tmp_path: Path, pg_url: str) -> None:
    with Store(tmp_path / "s.db") as source, Store(pg_url) as target:
        source.add_watches([WatchSpec("j1"), WatchSpec("j1", account="acme")], "queue")
        source.remove_watches(["j1"], account="acme")  # a tombstone of acme's
        source.add_watches([WatchSpec("j2", account="acme")], "queue")
        source._execute("INSERT INTO watch_queue (job_id, account) VALUES ('q1', 'acme')")
        copy_state(source, target)
        watches = target._execute("SELECT account, job_id FROM watches ORDER BY 1, 2")
        assert [tuple(r) for r in watches.fetchall()] == [("acme", "j2"), ("default", "j1")]
        queue = target._execute("SELECT account, job_id FROM watch_queue").fetchall()
        assert [tuple(r) for r in queue] == [("acme", "q1")]
        tombstones = target._execute("SELECT account, job_id FROM discovered").fetchall()
        assert [tuple(r) for r in tombstones] == [("acme", "j1")]
