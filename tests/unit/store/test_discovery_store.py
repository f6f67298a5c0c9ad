"""Discovery's part of the state on both backends: when the state began (written once), the
covered mark, and the ids discovery makes a watch of once only."""

from __future__ import annotations

from pathlib import Path

from notifier.models import WatchSpec
from notifier.store import Store
from tests.kit import StoreFactory
from tests.kit.schema import schema_1_file


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_state_start_is_written_once(make_store: StoreFactory) -> None:
    clock = Clock(1_800_000_000.5)
    first = make_store(clock=clock)
    assert first.state_created_at() == 1_800_000_000.5
    clock.now += 3600
    first.close()
    assert make_store(clock=clock).state_created_at() == 1_800_000_000.5  # a restart


def test_an_old_state_file_gets_its_start_when_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_1_file(path)
    with Store(path, clock=lambda: 1_800_000_123.0) as store:
        assert store.state_created_at() == 1_800_000_123.0
        assert {w["job_id"] for w in store.list_watches()} == {"old-active", "old-done"}
        # Ids that were watches before are never made again by discovery.
        assert store.discover({"old-done": 5, "fresh": 6}, {}, None) == ["fresh"]


def test_discovered_ids_are_made_once_with_their_labels(make_store: StoreFactory) -> None:
    store = make_store()
    labels = {"via": "discovery"}
    assert store.discover({"a": 100, "b": 101}, labels, ("ops",)) == ["a", "b"]
    # The same ids again (a page that shifted), one new: only the new one is made.
    assert store.discover({"b": 101, "c": 102, "a": 100}, labels, ("ops",)) == ["c"]
    rows = {w["job_id"]: w for w in store.list_watches()}
    assert set(rows) == {"a", "b", "c"}
    assert {(w["source"], w["state"]) for w in rows.values()} == {("discovery", "active")}
    assert rows["a"]["labels"] == labels and rows["a"]["endpoints"] == ["ops"]
    # A watch added by hand is left as it is; a removed one is not made again.
    store.add_watches([WatchSpec("by-hand", {"k": "v"})], "cli")
    store.remove_watches(["b"])
    assert store.discover({"by-hand": 103, "b": 101, "d": 104}, labels, None) == ["d"]
    assert store.watch_summary("by-hand")["labels"] == {"k": "v"}  # type: ignore[index]
    assert store.watch_summary("b") is None


def test_the_covered_mark_belongs_to_its_since(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.discovery_covered(1000.0) == 1000.0  # nothing covered yet: since itself
    store.discover({"old": 1500, "edge": 2000, "new": 2100}, {}, None)
    store.advance_discovery(1000.0, 2000.0)
    again = make_store()  # another connection (a restart) reads the same
    assert again.discovery_covered(1000.0) == 2000.0
    assert again.discovery_covered(500.0) == 500.0  # another since starts over
    # Ids below the mark are never looked at again: their rows go; the mark's second stays.
    assert again.discover({"old": 1500, "edge": 2000}, {}, None) == []
    rows = again._execute("SELECT job_id FROM discovered ORDER BY job_id").fetchall()
    assert [r[0] for r in rows] == ["edge", "new"]


def test_each_kind_has_its_own_covered_mark_and_rows(make_store: StoreFactory) -> None:
    store = make_store()
    store.discover({"lip": 1500}, {}, None)
    store.discover({"vid": 1500, "lip": 1600}, {}, None, kind="video")
    store.advance_discovery(1000.0, 2000.0, "video")
    again = make_store()
    assert again.discovery_covered(1000.0, "video") == 2000.0
    assert again.discovery_covered(1000.0) == 1000.0  # lip-sync's list is not covered yet
    # Only video's rows below its mark went; lip-sync's ids are still known to discovery.
    rows = again._execute("SELECT kind, job_id FROM discovered ORDER BY kind").fetchall()
    assert [tuple(r) for r in rows] == [("lip_sync", "lip")]
    assert again.discover({"lip": 1500}, {}, None) == []
    # An older state's lip-sync mark keeps its name (and so its place) under kinds.
    again.advance_discovery(1000.0, 1800.0)
    marks = dict(again._execute("SELECT name, value FROM state_marks").fetchall())
    assert marks["discovery_covered"] == 1800.0 and marks["discovery_covered:video"] == 2000.0


def test_retention_forgets_old_ids(make_store: StoreFactory) -> None:
    clock = Clock(1_800_000_000.0)
    store = make_store(clock=clock)
    store.add_watches([WatchSpec("removed-long-ago")], "cli")
    store.remove_watches(["removed-long-ago"])
    store.discover({"found": 1_799_999_000}, {}, None)
    clock.now += 40 * 86400
    store.prune(clock.now - 30 * 86400)
    assert store._execute("SELECT count(*) FROM discovered").fetchone()[0] == 0
