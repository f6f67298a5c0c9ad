"""A watch-file change whose sync fails is not lost (issue 8, defect 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notifier.intake.watchfile import WatchFile, WatchFileSettings
from notifier.store import Store, StoreUnavailable


def test_a_change_is_synced_after_a_failed_sync(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    watch = tmp_path / "watch.yaml"
    store = Store(state, busy_timeout=0.05)
    follower = WatchFile(WatchFileSettings(watch))
    watch.write_text("- first01\n")
    assert follower.poll(store, None) == {"added": 1, "updated": 0, "removed": 0, "total": 1}

    watch.write_text("- first01\n- second02\n")
    other = sqlite3.connect(state, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the sync fails
    try:
        with pytest.raises(StoreUnavailable):
            follower.poll(store, None)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.writable()
    # The file did not change again, yet the next poll still brings its new id in.
    assert follower.poll(store, None) == {"added": 1, "updated": 0, "removed": 0, "total": 2}
    assert {w["job_id"] for w in store.list_watches()} == {"first01", "second02"}
    assert follower.poll(store, None) is None
