"""The watch file with several nodes on one state (issue 19, item 6): each node's file is its
listing, a sync replaces only its own, and a file watch goes only when no listing has it;
a gone node's listing is dropped after LISTING_TTL; one daemon (no node) is as before."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from notifier.intake.watchfile import WatchFile, WatchFileSettings
from notifier.models import WatchSpec
from notifier.store import Store
from notifier.store.schema import _migrations
from notifier.store.watches import LISTING_TTL
from tests.kit import FakeClock, StoreFactory


def _specs(*ids: str) -> list[WatchSpec]:
    return [WatchSpec(job_id) for job_id in ids]


def _active(store: Store) -> set[str]:
    return {w["job_id"] for w in store.list_watches() if w["state"] == "active"}


def test_a_node_removes_only_what_no_listing_has(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock())
    assert store.sync_file_watches(_specs("f1", "f2", "f3"), "a") == (3, 0, 0)
    # B's older copy lists one of them: nothing of A's goes.
    assert store.sync_file_watches(_specs("f1"), "b") == (0, 0, 0)
    assert _active(store) == {"f1", "f2", "f3"}
    # A drops f2 (only A lists it: removed at once) and f1 (B still lists it: kept).
    assert store.sync_file_watches(_specs("f3"), "a") == (0, 0, 1)
    assert _active(store) == {"f1", "f3"}
    assert store.sync_file_watches(_specs(), "b") == (0, 0, 1)
    assert _active(store) == {"f3"}


def test_a_gone_nodes_listing_is_dropped_after_the_ttl(make_store: StoreFactory) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    store.sync_file_watches(_specs("f1", "f2"), "old-pid")
    store.sync_file_watches(_specs("f2"), "new-pid")
    clock.advance(LISTING_TTL / 2)
    assert store.keep_file_listing("new-pid")
    assert store.sync_file_watches(_specs("f2"), "new-pid") == (0, 0, 0)  # old-pid still seen
    clock.advance(LISTING_TTL / 2 + 1)
    assert store.sync_file_watches(_specs("f2"), "new-pid") == (0, 0, 1)
    assert _active(store) == {"f2"}
    # The dropped node learns it at its next look, and lists its file again.
    assert not store.keep_file_listing("old-pid")


def test_one_daemon_without_a_node_name_syncs_as_before(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock())
    store.sync_file_watches(_specs("f1", "f2"), "somebody")
    assert store.sync_file_watches(_specs("f2")) == (0, 0, 1)  # every listing replaced
    assert _active(store) == {"f2"}


def test_file_watches_from_before_the_upgrade_are_kept_until_their_listing_lapses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        for number, script in _migrations():
            if number < 16:
                db.executescript(script)
                db.execute(f"PRAGMA user_version = {number}")
        db.execute(
            "INSERT INTO watches (job_id, source, labels, added_at, next_poll_at, poll_key)"
            " VALUES ('legacy1', 'file', '{}', 0, 0, 0)"
        )
    clock = FakeClock(time.time())
    with Store(path, clock=clock) as store:
        # Another node's file (unknown: from before) may list it: a named node keeps it...
        assert store.sync_file_watches(_specs("new1"), "web-1") == (1, 0, 0)
        assert _active(store) == {"legacy1", "new1"}
        clock.advance(LISTING_TTL + 5)
        # ... until the listing from before lapses, as a gone node's does.
        assert store.sync_file_watches(_specs("new1"), "web-1") == (0, 0, 1)
        assert _active(store) == {"new1"}


def test_a_node_whose_listing_was_dropped_lists_its_file_again(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    watch = tmp_path / "watch.yaml"
    watch.write_text("- f1\n")
    follower = WatchFile(WatchFileSettings(watch), node="b")
    assert follower.poll(store, None) == {"added": 1, "updated": 0, "removed": 0, "total": 1}
    # B was not seen for longer than the TTL (frozen, the state down): A's sync drops it.
    clock.advance(LISTING_TTL + 1)
    assert store.sync_file_watches(_specs(), "a") == (0, 0, 1)
    # The file did not change, yet B's next look lists it again and watches f1 again.
    assert follower.poll(store, None) == {"added": 1, "updated": 0, "removed": 0, "total": 1}
    assert _active(store) == {"f1"}
    assert follower.poll(store, None) is None
