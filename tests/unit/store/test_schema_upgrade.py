"""A state file written by schema 1 (the first release), with data in it, opened by today's
Store: every row survives, the later columns get their defaults, and the daemon's queries
work on the upgraded file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from notifier.store import Store
from notifier.store.schema import SCHEMA_VERSION
from tests.kit.schema import NOW, schema_1_file


def test_schema_1_file_with_rows_is_upgraded_without_losing_any(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_1_file(path)

    with Store(path, clock=lambda: NOW) as store:
        watches = {w["job_id"]: w for w in store.list_watches()}
        assert set(watches) == {"old-active", "old-done"}
        assert watches["old-active"]["state"] == "active"
        assert watches["old-active"]["progress"] == 40
        assert watches["old-active"]["labels"] == {"customer": "acme"}
        assert watches["old-done"]["state"] == "succeeded"
        assert [e["event_id"] for e in store.list_events()] == ["evt_old"]
        deliveries = {d["endpoint"]: d for d in store.list_deliveries()}
        assert {k: (d["state"], d["attempts"]) for k, d in deliveries.items()} == {
            "ops": ("pending", 2),
            "team": ("dead", 5),
        }
        assert store.get_token("http://vendor|app") == ("tok-old", NOW + 3600)
        assert store.live_counts() == (1, 1)
        # Schema 3's poll order was filled in from the old next_poll_at: the active watch is
        # due now, with its old counters and an empty policy memory.
        (due,) = store.due_watches(NOW, 10)
        assert due.job_id == "old-active"
        assert due.memory().misses == 0 and due.memory().first_running_at is None
        assert store.writable()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT job_id FROM watch_queue").fetchall() == [("queued-1",)]
        (seen,) = db.execute("SELECT last_seen_running_at FROM events").fetchone()
        assert seen is None
