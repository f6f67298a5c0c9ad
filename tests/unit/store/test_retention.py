"""state.retention: old settled history is forgotten in batches, nothing live is (issue 9)."""

from __future__ import annotations

from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import T0, FakeClock, StoreFactory

DAY = 86400.0


def finish(store: Store, job_id: str, status: int = 20) -> Event:
    store.add_watches([WatchSpec(job_id)], "queue")
    detail = JobDetail(job_id, status, 100, "ok", "", "", 0, 1_700_000_000)
    event = Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", store.now(), b"{}")
    store.record_terminal(detail, event, ["ops"])
    return event


def counts(store: Store) -> dict[str, int]:
    return {
        table: store._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("events", "deliveries", "delivery_attempts", "watches", "watch_queue")
    }


def test_prune_forgets_only_old_settled_history(make_store: StoreFactory) -> None:
    clock = FakeClock(T0)
    store = make_store(clock=clock)
    # 40 days ago: one delivered, one dead, one still pending (kept: it is not settled).
    for name in ("olddone", "olddead", "oldpending"):
        finish(store, name)
    (done, dead, _pending) = sorted(store.due_deliveries("ops", clock.now, 10), key=lambda d: d.id)
    store.delivery_succeeded(done.id, 200)
    store.delivery_failed(dead.id, 410, "HTTP 410", None)
    store.enqueue([WatchSpec("bad id!")])
    store.take_queue(lambda *_: "not a valid id")
    store.add_watches([WatchSpec("stillactive")], "queue")  # active: never pruned
    clock.advance(40 * DAY)
    finish(store, "recent")  # 1 day old at the prune
    clock.advance(DAY)

    before = counts(store)
    pruned = store.prune(clock.now - 30 * DAY)

    assert pruned == {"events": 2, "watches": 3, "rejected": 1}
    after = counts(store)
    assert after["events"] == before["events"] - 2
    assert after["deliveries"] == before["deliveries"] - 2
    assert after["delivery_attempts"] == before["delivery_attempts"] - 2
    assert {e["job_id"] for e in store.list_events()} == {"oldpending", "recent"}
    assert {w["job_id"] for w in store.list_watches()} == {"stillactive", "recent"}
    assert store.rejected_queue_rows() == []
    assert store.prune(clock.now - 30 * DAY) == {"events": 0, "watches": 0, "rejected": 0}


def test_prune_works_in_batches(make_store: StoreFactory) -> None:
    clock = FakeClock(T0)
    store = make_store(clock=clock)
    for i in range(25):
        finish(store, f"job{i:02d}")
    for due in store.due_deliveries("ops", clock.now, 100):
        store.delivery_succeeded(due.id, 200)
    clock.advance(31 * DAY)
    assert store.prune(clock.now - 30 * DAY, batch=10) == {
        "events": 10,
        "watches": 10,
        "rejected": 0,
    }
    assert store.prune(clock.now - 30 * DAY, batch=10)["events"] == 10
    assert store.prune(clock.now - 30 * DAY, batch=10)["events"] == 5
    assert store.list_events() == []
