"""Every delivery attempt is kept apart from the delivery row, so a replay (which resets the
row) keeps the history; a replay can target one endpoint; old state files upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import SCHEMA_VERSION, Store
from notifier.store.schema import _migrations, _split_sql
from tests.kit import FakeClock, StoreFactory


def _finish(store: Store, job_id: str) -> Event:
    detail = JobDetail(job_id, 20, 100, "ok", "", "", 0, 1_700_000_000)
    event = Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", 1.0, b'{"type": "x"}')
    store.add_watches([WatchSpec(job_id)], "queue")
    assert store.record_terminal(detail, event, ["ops", "analytics"])
    return event


def test_attempts_survive_a_replay_of_one_endpoint(make_store: StoreFactory) -> None:
    clock = FakeClock(1_800_000_000.0)
    store = make_store(clock=clock)
    event = _finish(store, "a")
    due = {d.event.event_id: d for d in store.due_deliveries("ops", clock(), 10)}
    ops = due[event.event_id]
    started = clock()
    clock.advance(0.25)
    assert store.delivery_failed(ops.id, 500, "HTTP 500", clock() + 5, started=started)
    clock.advance(5)
    assert store.delivery_succeeded(ops.id, 200, started=clock() - 0.5)
    (analytics,) = store.due_deliveries("analytics", clock(), 10)
    assert store.delivery_succeeded(analytics.id, 204, started=clock())

    assert store.replay([event.event_id], endpoint="ops") == {event.event_id: 1}
    history = store.event_history(event.event_id)
    assert history is not None and history["body"] == {"type": "x"}
    rows = {d["endpoint"]: d for d in history["deliveries"]}
    assert rows["ops"]["state"] == "pending" and rows["ops"]["attempts"] == 0
    assert rows["analytics"]["state"] == "delivered"  # not replayed
    assert [(a["status"], a["outcome"], a["generation"]) for a in rows["ops"]["history"]] == [
        (500, "failed", 0),
        (200, "delivered", 0),
    ]
    assert [a["duration"] for a in rows["ops"]["history"]] == [0.25, 0.5]
    assert rows["ops"]["history"][0]["error"] == "HTTP 500"

    (again,) = store.due_deliveries("ops", clock(), 10)
    assert store.delivery_failed(again.id, 410, "gone", None, generation=again.generation)
    later = store.event_history(event.event_id)
    assert later is not None
    rows = {d["endpoint"]: d for d in later["deliveries"]}
    assert [(a["outcome"], a["generation"]) for a in rows["ops"]["history"]][-1] == ("dead", 1)
    assert store.event_history("evt_unknown") is None


def test_schema_5_state_upgrades_and_keeps_attempts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in _migrations():
        if number <= 5:
            for statement in _split_sql(script):
                db.execute(statement)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO events VALUES ('evt_1', 'a', 'lip_sync.failed', 1.0, x'7b7d', NULL)")
    db.execute(
        "INSERT INTO deliveries (event_id, endpoint, attempts, created_at, next_attempt_at) "
        "VALUES ('evt_1', 'ops', 2, 1.0, 1.0)"
    )
    db.close()
    with Store(path) as store:
        (version,) = store._db.execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION
        (due,) = store.due_deliveries("ops", store.now(), 10)
        assert store.delivery_failed(due.id, 503, "HTTP 503", store.now() + 1)
        history = store.event_history("evt_1")
        assert history is not None
        (delivery,) = history["deliveries"]
        assert delivery["attempts"] == 3  # the two from before the upgrade, and this one
        assert [a["status"] for a in delivery["history"]] == [503]
