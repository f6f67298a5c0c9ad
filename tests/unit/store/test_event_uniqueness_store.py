"""Schema 21 (issue 22): an event is unique by its id alone. A job event's id says its account,
job, type and reopen, so the old UNIQUE (job_id, type) refused events that are real: the same
job id's on another account, a reopened watch's that ended the same way again. A state of
schema 20 migrates with every row of the event tables unchanged, on SQLite (where the tables
are rebuilt) and PostgreSQL; a migration failing half-way on SQLite leaves the old state."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from notifier.store import Store
from tests.kit.schema import migration_blocked, postgres_state_at, sqlite_state_at, table_rows

#: The tables schema 21 rebuilds on SQLite, and what orders their rows.
TABLES = {"events": "event_id", "deliveries": "id", "delivery_attempts": "id"}
COLUMNS = {
    "events": ["event_id", "job_id", "type", "created_at", "body", "last_seen_running_at",
               "seq", "kind", "account"],
    "deliveries": ["id", "event_id", "endpoint", "state", "attempts", "created_at",
                   "next_attempt_at", "last_attempt_at", "last_status", "last_error",
                   "delivered_at", "generation", "deferred", "first_attempt_at", "claimed_by",
                   "claim_expires", "claim_token"],
    "delivery_attempts": ["id", "delivery_id", "generation", "started_at", "duration",
                          "status", "error", "outcome", "claim_token", "applied"],
}  # fmt: skip
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "events": [
        ("evt_a", "job-1", "lip_sync.failed", 3.0, b'{"a": 1}', 2.0, 1, "lip_sync", "default"),
        ("evt_ops", "ops:1", "vendor.failing", 4.0, b"{}", None, 2, None, None),
        ("evt_v", "job-1", "video.succeeded", 5.0, b"{}", None, 3, "video", "default"),
    ],
    "deliveries": [
        (1, "evt_a", "ops", "delivered", 2, 3.0, None, 3.5, 200, None, 3.5, 1, 0, 3.1, None,
         None, 4),
        (2, "evt_a", "team", "pending", 1, 3.0, 9.0, 3.2, 503, "busy", None, 0, 1, 3.2,
         "node-1", 99.0, 2),
        (3, "evt_ops", "team", "dead", 5, 4.0, None, 4.5, None, "timeout", None, 0, 0, 4.1,
         None, None, 5),
    ],
    "delivery_attempts": [
        (1, 1, 0, 3.1, 0.25, 503, "busy", "failed", 1, 1),
        (2, 1, 1, 3.5, 0.1, 200, None, "delivered", 4, 1),
        (3, 2, 0, 3.2, 0.3, 503, "busy", "failed", 2, 1),
    ],
}  # fmt: skip


def _fill(execute_many: Any, placeholder: str) -> None:
    for table, rows in ROWS.items():
        marks = ", ".join([placeholder] * len(COLUMNS[table]))
        execute_many(f"INSERT INTO {table} ({', '.join(COLUMNS[table])}) VALUES ({marks})", rows)


def _snapshot(execute: Any) -> dict[str, list[tuple[Any, ...]]]:
    return table_rows(execute, TABLES, COLUMNS)


def _old_sqlite_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite_state_at(path, 20)
    _fill(db.executemany, "?")
    before = _snapshot(lambda sql: db.execute(sql).fetchall())
    db.close()
    assert before == ROWS
    return before


def _check_upgraded(store: Store) -> None:
    assert _snapshot(lambda sql: store._execute(sql).fetchall()) == ROWS
    # The same job id and type again (another account's job, or a reopen's): now recorded.
    store._execute(
        "INSERT INTO events (event_id, job_id, type, created_at, body, seq, kind, account) "
        "VALUES ('evt_b', 'job-1', 'lip_sync.failed', 6.0, '{}', 4, 'lip_sync', 'shop')"
    )
    history = store.event_history("evt_a")
    assert history is not None
    assert [d["endpoint"] for d in history["deliveries"]] == ["ops", "team"]
    assert [len(d["history"]) for d in history["deliveries"]] == [2, 1]


def test_a_schema_20_sqlite_state_keeps_every_event_delivery_and_attempt(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_sqlite_state(path)
    with Store(path) as store:
        _check_upgraded(store)
        # The rebuilt tables still refer to each other: a delivery of no event is refused.
        references = {
            table: [r[2] for r in store._execute(f"PRAGMA foreign_key_list({table})")]
            for table in ("deliveries", "delivery_attempts")
        }
        assert references == {"deliveries": ["events"], "delivery_attempts": ["deliveries"]}
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            store._execute(
                "INSERT INTO deliveries (event_id, endpoint, created_at) VALUES ('nope', 'x', 1)"
            )


def test_a_statement_failing_half_way_through_migration_21_leaves_the_old_state(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    before = _old_sqlite_state(path)
    # In the way of the third table's copy, after the first two: all of it rolls back.
    with migration_blocked(path, "delivery_attempts_v21", 20) as db:
        assert _snapshot(lambda sql: db.execute(sql).fetchall()) == before
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert not {"events_v21", "deliveries_v21"} & tables
    with Store(path) as store:  # the obstacle gone, the next open upgrades
        _check_upgraded(store)


def test_a_schema_20_postgres_state_keeps_every_event_delivery_and_attempt(pg_url: str) -> None:
    with postgres_state_at(pg_url, 20) as conn:
        with conn.cursor() as cursor:
            _fill(cursor.executemany, "%s")
        assert _snapshot(lambda sql: conn.execute(sql).fetchall()) == ROWS
    with Store(pg_url) as store:
        _check_upgraded(store)
