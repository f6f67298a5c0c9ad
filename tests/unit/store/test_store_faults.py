"""The store under real faults: a full disk, another writer's lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.models import WatchSpec
from notifier.store import BUSY_CAUSE, Store, StoreUnavailable
from notifier.store.base import FAIL_FAST_FOR
from tests.kit import SmallDisk, small_disk


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    # Room for a new state (its migrations' WAL is about 540 KB) and a few writes.
    with small_disk(tmp_path / "small", "700k") as d:
        yield d


def specs(prefix: str, n: int) -> list[WatchSpec]:
    return [WatchSpec(job_id=f"{prefix}{i}", labels={"k": "v" * 200}) for i in range(n)]


def test_full_disk_is_named_rolled_back_and_recovered(disk: SmallDisk) -> None:
    store = Store(disk.path / "state.db")
    store.add_watches(specs("a", 1), "cli")
    disk.fill()
    with pytest.raises(StoreUnavailable) as raised:
        store.add_watches(specs("b", 500), "cli")
    assert "the disk is full" in str(raised.value)
    assert str(disk.path / "state.db") in str(raised.value)
    # The failed COMMIT left no transaction open, and nothing of it was written.
    assert not store._db.in_transaction
    assert [w["job_id"] for w in store.list_watches()] == ["a0"]
    assert store.write_failure is not None and store.write_failure[1] == "the disk is full"
    assert not store.writable()

    disk.free()
    assert store.writable()
    assert store.write_failure is None
    store.add_watches(specs("c", 3), "cli")
    assert len(store.list_watches()) == 4


def test_writes_fail_fast_while_failing_but_probe_for_real(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(path, busy_timeout=0.05)
    store.add_watches(specs("a", 1), "cli")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program's write transaction
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            store.add_watches(specs("b", 1), "cli")
        assert raised.value.cause == BUSY_CAUSE
        # Later writes do not wait on the lock again (a tick makes many).
        for _ in range(20):
            with pytest.raises(StoreUnavailable):
                store.add_watches(specs("b", 1), "cli")
        assert time.monotonic() - started < FAIL_FAST_FOR
        assert not store.writable()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.writable()
    store.add_watches(specs("b", 1), "cli")
    assert {w["job_id"] for w in store.list_watches()} == {"a0", "b0"}


def test_a_bug_in_a_statement_is_not_an_outage(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    with pytest.raises(sqlite3.OperationalError), store.transaction():
        store._db.execute("UPDATE no_such_table SET x = 1")
    assert store.write_failure is None
    assert not store._db.in_transaction


def test_a_failed_commit_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A COMMIT that fails without SQLite rolling back by itself (here a deferred foreign
    key) must not leave the connection inside the transaction: every later write would fail
    with "cannot start a transaction within a transaction"."""
    store = Store(tmp_path / "state.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store._db.execute("PRAGMA defer_foreign_keys = ON")
        store._db.execute(
            "INSERT INTO deliveries (event_id, endpoint, created_at, next_attempt_at) "
            "VALUES ('evt_missing', 'ops', 0, 0)"
        )
    assert not store._db.in_transaction
    store.add_watches(specs("a", 1), "cli")
    assert store.list_deliveries() == []
