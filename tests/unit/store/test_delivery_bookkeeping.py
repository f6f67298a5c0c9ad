"""The store's delivery bookkeeping: generations against replays, parked endpoints,
replays that create deliveries, and old state files upgrading."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notifier.delivery.transition import route
from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import SCHEMA_VERSION, Store
from notifier.store.schema import Q, _migrations, _split_sql
from tests.kit import FakeClock, StoreFactory

SUBS = [("ops", ["lip_sync.succeeded", "lip_sync.failed"]), ("team", ["lip_sync.failed"])]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def store(make_store: StoreFactory, clock: FakeClock) -> Store:
    return make_store(clock=clock)


def finish(store: Store, job_id: str, status: int, endpoints: list[str]) -> Event:
    detail = JobDetail(job_id, status, 100, "ok", "", "", 0, 1_700_000_000)
    kind = "lip_sync.succeeded" if status == 20 else "lip_sync.failed"
    event = Event(f"evt_{job_id}", job_id, kind, 1.0, b"{}")
    assert store.record_terminal(detail, event, endpoints)
    return event


def test_a_result_of_an_older_generation_is_not_written(store: Store) -> None:
    store.add_watches([WatchSpec("a")], "queue")
    event = finish(store, "a", 20, ["ops"])
    (due,) = store.due_deliveries("ops", store.now(), 10)
    assert store.replay([event.event_id]) == {event.event_id: 1}
    assert not store.delivery_failed(due.id, 500, "HTTP 500", None, generation=due.generation)
    assert not store.delivery_succeeded(due.id, 200, generation=due.generation)
    (row,) = store.list_deliveries()
    assert (row["state"], row["attempts"]) == ("pending", 0)
    (again,) = store.due_deliveries("ops", store.now(), 10)
    assert again.generation == due.generation + 1  # type: ignore[operator]
    assert store.delivery_succeeded(again.id, 200, generation=again.generation)


def test_parked_and_revived_by_endpoint(store: Store, clock: FakeClock) -> None:
    store.add_watches([WatchSpec("a"), WatchSpec("b")], "queue")
    finish(store, "a", 30, ["ops", "team"])
    finish(store, "b", 30, ["gone"])
    assert store.park_unconfigured({"ops", "team", "gone"}) == {}
    assert store.park_unconfigured({"ops"}, removed={"team"}) == {"team": 1, "gone": 1}
    errors = {d["endpoint"]: (d["state"], d["last_error"]) for d in store.list_deliveries()}
    assert errors == {
        "ops": ("pending", None),
        "team": ("dead", "endpoint removed"),
        "gone": ("dead", "endpoint not configured"),
    }
    # A late failure of an attempt started before the park leaves it parked.
    (team,) = [d for d in store.list_deliveries() if d["endpoint"] == "team"]
    assert not store.delivery_failed(team["id"], 500, "HTTP 500", clock.now + 5)
    clock.advance(10)
    assert store.revive_endpoints(["ops", "team"]) == {"team": 1}
    (due,) = store.due_deliveries("team", clock.now, 10)
    assert due.attempts == 0
    # A dead delivery with another reason is not revived: that takes a replay.
    store.delivery_failed(due.id, 410, "HTTP 410", None)
    assert store.revive_endpoints(["team"]) == {}


def test_replay_creates_the_deliveries_current_routing_gives(store: Store) -> None:
    store.add_watches([WatchSpec("a", endpoints=("team",)), WatchSpec("b")], "queue")
    lonely = finish(store, "a", 20, [])  # team takes only failures: no delivery
    other = finish(store, "b", 30, ["ops"])

    def routing(
        event_type: str, watch_endpoints: tuple[str, ...] | None, _account: str | None
    ) -> list[str]:
        return route(event_type, watch_endpoints, [*SUBS, ("team", ["lip_sync.succeeded"])])

    assert store.replay([lonely.event_id, other.event_id, "evt_nope"], routing) == {
        lonely.event_id: 1,
        other.event_id: 2,
        "evt_nope": 0,
    }
    rows = {(d["event_id"], d["endpoint"]) for d in store.list_deliveries()}
    assert rows == {
        (lonely.event_id, "team"),
        (other.event_id, "ops"),
        (other.event_id, "team"),
    }


def test_route_keeps_named_endpoints_the_daemon_does_not_run() -> None:
    assert route("lip_sync.failed", ["team", "new1"], SUBS) == ["team", "new1"]
    assert route("lip_sync.succeeded", ["team", "new1"], SUBS) == ["new1"]
    assert route("lip_sync.failed", None, SUBS) == ["ops", "team"]


def test_schema_3_state_upgrades_with_its_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in _migrations():
        if number <= 3:
            for statement in _split_sql(script):
                db.execute(statement)
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO events VALUES ('evt_1', 'a', 'lip_sync.failed', 1.0, x'7b7d', NULL)")
    db.execute(
        "INSERT INTO deliveries (event_id, endpoint, attempts, created_at, next_attempt_at) "
        "VALUES ('evt_1', 'ops', 2, 1.0, 1.0)"
    )
    db.close()
    with Store(path) as store:
        assert store._one("watch_exists", "default", "lip_sync", "x") is None
        (version,) = store._db.execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION
        (due,) = store.due_deliveries("ops", store.now(), 10)
        assert (due.attempts, due.generation, due.deferred, due.first_attempt_at) == (2, 0, 0, None)
        assert store.delivery_failed(
            due.id, 503, "HTTP 503", store.now() + 1, deferred=True, generation=due.generation
        )
        row = store._db.execute(
            "SELECT attempts, deferred, first_attempt_at FROM deliveries"
        ).fetchone()
        assert row[0] == 3 and row[1] == 1 and row[2] is not None


def test_park_check_uses_its_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    plan = " | ".join(
        r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + Q["pending_endpoints"])
    )
    assert "deliveries_state_endpoint" in plan and "SCAN deliveries" not in plan, plan
