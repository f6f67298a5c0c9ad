from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from notifier.models import JobMemory, WatchSpec
from notifier.store import SCHEMA_VERSION, Store, StoreError
from tests.kit import FakeClock, StoreFactory, fail_as_before
from tests.kit.store import detail, event


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def store(make_store: StoreFactory, clock: FakeClock) -> Store:
    return make_store(clock=clock)


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Store:
    return Store(tmp_path / "sub" / "state.db", clock=clock)


def test_file_is_private_and_schema_versioned(sqlite_store: Store) -> None:
    assert stat.S_IMODE(sqlite_store.backend.path.stat().st_mode) == 0o600
    with sqlite3.connect(sqlite_store.backend.path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_keeps_data_and_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_watches([WatchSpec("a")], "queue")
    with Store(path) as s:
        assert [w["job_id"] for w in s.list_watches()] == ["a"]
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this program"):
        Store(path)


def test_due_watches_most_overdue_first_and_skips_in_flight(store: Store, clock: FakeClock) -> None:
    for i, job in enumerate(["c", "a", "b"]):
        clock.now = 100.0 + i
        store.add_watches([WatchSpec(job)], "queue")
    clock.now = 200.0
    assert [w.job_id for w in store.due_watches(200.0, 10)] == ["c", "a", "b"]
    assert [w.job_id for w in store.due_watches(200.0, 2, frozenset({"c"}))] == ["a", "b"]
    assert store.due_watches(100.5, 10)[0].job_id == "c"
    store.record_poll(detail("c", 10, 40), 300.0, 300.0, JobMemory(added_at=100.0))
    assert [w.job_id for w in store.due_watches(200.0, 10)] == ["a", "b"]


def test_upsert_updates_labels_but_not_state(store: Store) -> None:
    assert store.add_watches([WatchSpec("a", {"x": "1"})], "queue") == (1, 0)
    assert store.add_watches([WatchSpec("a", {"x": "1"})], "queue") == (0, 0)
    assert store.add_watches([WatchSpec("a", {"x": "2"}, ("ops",))], "queue") == (0, 1)
    (w,) = store.list_watches()
    assert w["labels"] == {"x": "2"} and w["endpoints"] == ["ops"]
    store.record_terminal(detail("a", 20, 100), event("a"), ["ops"])
    store.add_watches([WatchSpec("a")], "queue")
    assert store.list_watches()[0]["state"] == "succeeded"


def test_terminal_writes_event_and_deliveries_once(store: Store) -> None:
    store.add_watches([WatchSpec("a")], "queue")
    assert store.record_terminal(detail("a", 20, 100), event("a"), ["ops", "team"])
    # A second answer for the same job and state (e.g. a poll that raced) adds nothing.
    assert not store.record_terminal(detail("a", 20, 100), event("a", event_id="evt_2"), ["ops"])
    assert len(store.list_events()) == 1
    assert [d["endpoint"] for d in store.list_deliveries()] == ["ops", "team"]
    assert store.watch_counts()["succeeded"] == 1
    assert store.delivery_counts() == {"pending": 2, "delivered": 0, "dead": 0}


def test_delivery_lifecycle_and_replay(store: Store, clock: FakeClock) -> None:
    store.add_watches([WatchSpec("a")], "queue")
    store.record_terminal(detail("a", 30), event("a", "lip_sync.failed"), ["ops"])
    (due,) = store.due_deliveries("ops", clock.now, 10)
    assert due.attempts == 0 and due.event.type == "lip_sync.failed"
    assert store.due_deliveries("ops", clock.now, 10, frozenset({due.id})) == []
    store.delivery_failed(due.id, 500, "HTTP 500", clock.now + 5)
    assert store.due_deliveries("ops", clock.now, 10) == []
    store.delivery_failed(due.id, 500, "HTTP 500", None)
    (dead,) = store.list_deliveries("dead")
    assert dead["attempts"] == 2 and dead["last_error"] == "HTTP 500"
    assert store.replay_dead() == 1
    (again,) = store.due_deliveries("ops", clock.now, 10)
    assert again.attempts == 0
    store.delivery_succeeded(again.id, 204)
    assert store.delivery_counts()["delivered"] == 1
    assert store.replay([due.event.event_id, "evt_unknown"]) == {
        due.event.event_id: 1,
        "evt_unknown": 0,
    }


def test_queue_intake_accepts_and_rejects(store: Store) -> None:
    store.enqueue([WatchSpec("a", {"k": "v"}), WatchSpec("b")])

    def parse(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec | str:
        if job_id == "b":
            return "nope"
        return WatchSpec(str(job_id), json.loads(str(labels)))

    result = store.take_queue(parse)
    assert (result.added, result.updated) == (1, 0)
    assert [r[1] for r in result.rejected] == ["nope"]
    assert [w["job_id"] for w in store.list_watches()] == ["a"]
    assert [r["job_id"] for r in store.rejected_queue_rows()] == ["b"]
    # Rejected rows are not offered again.
    assert store.take_queue(parse).rejected == []


def test_file_sync_removes_only_active_file_watches(store: Store) -> None:
    store.add_watches([WatchSpec("q")], "queue")
    assert store.sync_file_watches([WatchSpec("f1"), WatchSpec("f2")]) == (2, 0, 0)
    store.record_terminal(detail("f2", 20, 100), event("f2"), [])
    assert store.sync_file_watches([WatchSpec("f3")]) == (1, 0, 1)
    assert sorted(w["job_id"] for w in store.list_watches()) == ["f2", "f3", "q"]


def test_expire_and_unknown_job(store: Store, clock: FakeClock) -> None:
    store.add_watches([WatchSpec("old")], "queue")
    clock.now += 50
    store.add_watches([WatchSpec("new"), WatchSpec("bad")], "queue")
    fail_as_before(store, "bad", "vendor rejected the id: record not found")
    clock.now += 60
    # Past give_up_after but never answered: made due for a last look, not expired.
    assert store.expirable_watches(100) == []
    old = store.get_watch("old")
    assert old is not None and old.poll_key <= clock.now
    store.record_poll(detail("old", 10, 40), clock.now + 1, clock.now + 1, JobMemory(0.0))
    (expirable,) = store.expirable_watches(100)
    assert (expirable.job_id, expirable.progress) == ("old", 40)
    given_up = event("old")
    assert not store.expire_watch("old", given_up, ["ops"], clock.now - 500)  # too young
    assert store.expire_watch("old", given_up, ["ops"], clock.now - 100)
    assert not store.expire_watch("old", given_up, ["ops"], clock.now - 100)  # once
    assert [d["event_id"] for d in store.list_deliveries()] == [given_up.event_id]
    states = {w["job_id"]: w["state"] for w in store.list_watches()}
    assert states == {"old": "expired", "new": "active", "bad": "failed"}
    assert store.list_watches("failed")[0]["msg"].startswith("vendor rejected")


def test_a_rejected_id_ends_with_its_event_once(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 18, item 7b: the watch's end, its lip_sync.rejected event and its deliveries are
    # one transaction; an old database's watches failed by rejection still read as failed.
    store.add_watches([WatchSpec("typo"), WatchSpec("old-typo")], "queue")
    fail_as_before(store, "old-typo", "vendor rejected the id 3x since …: record not found")
    for _ in range(2):
        store.record_rejection("typo", "record not found", clock.now + 5, 120)
    note = "unknown to the vendor: record not found (3x in 120s)"
    rejected = event("typo", "lip_sync.rejected")

    def broken(*_args: object) -> bool:
        raise RuntimeError("a bug while recording the event")

    with monkeypatch.context() as patch:
        patch.setattr(store, "_insert_event", broken)
        with pytest.raises(RuntimeError):
            store.reject_watch("typo", note, rejected, ["ops", "team"])
    assert store.list_watches("active")[0]["job_id"] == "typo"  # nothing of it was kept

    assert store.reject_watch("typo", note, rejected, ["ops", "team"])
    again = event("typo", "lip_sync.rejected", event_id="evt_again")
    assert not store.reject_watch("typo", "again", again, ["ops"])  # no longer active
    assert [(e["job_id"], e["type"]) for e in store.list_events()] == [
        ("typo", "lip_sync.rejected")
    ]
    assert sorted(d["endpoint"] for d in store.list_deliveries()) == ["ops", "team"]
    (row,) = store.list_watches("rejected")
    assert (row["job_id"], row["msg"], row["last_error"]) == ("typo", note, note)
    assert store.list_watches("failed")[0]["job_id"] == "old-typo"
    counts = store.watch_counts()
    assert (counts["rejected"], counts["failed"], counts["active"]) == (1, 1, 0)

    # Reopened, it is asked anew: its rejections start over.
    assert store.reopen_watch("typo") and store.reopen_watch("old-typo")
    seen = store.record_rejection("typo", "record not found", clock.now + 5, 120)
    assert seen is not None and seen[0] == 1


def test_token_cache_is_shared_and_dropped_only_if_current(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    a.save_token("acct", "t1", 2e9)
    assert b.get_token("acct") == ("t1", 2e9)
    b.save_token("acct", "t2", 2e9)
    a.drop_token("acct", "t1")  # stale: somebody already replaced it
    assert a.get_token("acct") == ("t2", 2e9)
    a.drop_token("acct", "t2")
    assert b.get_token("acct") is None


@pytest.mark.parametrize(
    ("name", "args", "index"),
    [
        ("due_watches", ("default", 0, 10), "watches_key"),
        ("early_watches", ("default", 0, 10), "watches_due"),
        ("oldest_active_create_time", ("default", "lip_sync"), "watches_active_created"),
        ("due_deliveries", ("ops", 0, 10), "deliveries_due"),
    ],
)
def test_per_tick_queries_use_their_index_without_sorting(
    sqlite_store: Store, name: str, args: tuple[object, ...], index: str
) -> None:
    """Without statistics SQLite would pick the (state, ...) index and sort every active
    row: O(n) per tick. The queries pin their index; this keeps them O(log n)."""
    from notifier.store.schema import Q

    sqlite_store.add_watches([WatchSpec(f"j{i}") for i in range(50)], "queue")
    db = sqlite3.connect(sqlite_store.backend.path)
    plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + Q[name], args))
    assert f"INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan and "SCAN watches" not in plan, plan


def test_an_answer_for_a_watch_that_ended_meanwhile_makes_no_second_event(store: Store) -> None:
    """Issue 19: a watch expired (or removed) while its poll was in flight still got a
    succeeded event: one job with expired and succeeded, or a removed watch with an event."""
    store.add_watches([WatchSpec("ended-1"), WatchSpec("gone-1")], "queue")
    expired = event("ended-1", "lip_sync.expired")
    assert store.expire_watch("ended-1", expired, ["ops"], cutoff=store.now() + 1)
    # The poll sent before the expiry answers "succeeded" after it.
    assert not store.record_terminal(detail("ended-1", 20, 100), event("ended-1"), ["ops"])
    store.remove_watches(["gone-1"])
    assert not store.record_terminal(detail("gone-1", 20, 100), event("gone-1"), ["ops"])
    assert [(e["job_id"], e["type"]) for e in store.list_events()] == [
        ("ended-1", "lip_sync.expired")
    ]
