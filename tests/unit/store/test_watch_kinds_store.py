"""Issue 21, item 3: a watch has a kind, and the same id under two kinds is two watches; the
phase last seen is stored; a state of schema 17 (before kinds) migrates with every watch
``lip_sync`` and every other value as it was, on both backends."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notifier.kinds import Phase
from notifier.models import Event, JobDetail, JobMemory, WatchSpec
from notifier.store import Store
from notifier.store.schema import _split_sql, dialect
from tests.kit import FakeClock, StoreFactory
from tests.kit.schema import DROPPED_INDEXES, table_rows

#: Watches in the old state: enough that the SQLite table rebuild is a real copy.
WATCHES = 3000
#: Each old watch's status (lip-sync's codes, as schema 17 stored them) and the phase the
#: migration gives it.
OLD_PHASES = {0: "queued", 10: "running", 20: "succeeded", 30: "failed", None: None}
#: The old tables and, for each, what orders its rows.
OLD_TABLES = {
    "watches": "job_id",
    "watch_queue": "seq",
    "events": "event_id",
    "deliveries": "id",
    "delivery_attempts": "id",
    "discovered": "job_id",
    "file_listings": "node, job_id",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def store(make_store: StoreFactory, clock: FakeClock) -> Store:
    return make_store(clock=clock)


def detail(job_id: str, status: int, kind: str = "lip_sync", progress: int = 0) -> JobDetail:
    return JobDetail(job_id, status, progress, "ok", create_time=1_700_000_000, kind=kind)


def event(job_id: str, type_: str) -> Event:
    return Event(f"evt_{job_id}_{type_}", job_id, type_, 1.0, b"{}")


def poll(store: Store, found: JobDetail) -> None:
    store.record_poll(found, store.now() + 5, store.now() + 5, JobMemory(added_at=0.0))


# ------------------------------------------------------------------------ two kinds, one id


def test_the_same_id_under_two_kinds_is_two_watches(store: Store) -> None:
    added, _ = store.add_watches([WatchSpec("42"), WatchSpec("42", kind="video")], "queue")
    assert added == 2
    poll(store, detail("42", 10, kind="video", progress=30))
    lip, video = store.get_watch("42"), store.get_watch("42", kind="video")
    assert lip is not None and video is not None
    assert (lip.kind, lip.status, lip.phase, lip.polls) == ("lip_sync", None, None, 0)
    assert (video.kind, video.status, video.phase, video.polls) == ("video", 10, Phase.RUNNING, 1)
    listed = {(w["kind"], w["job_id"]): w for w in store.list_watches()}
    assert set(listed) == {("lip_sync", "42"), ("video", "42")}
    assert listed["video", "42"]["phase"] == "running"

    assert store.remove_watches(["42"], kind="video") == 1
    assert store.get_watch("42", kind="video") is None and store.get_watch("42") is not None


def test_a_video_success_is_recorded_as_succeeded_from_its_phase(store: Store) -> None:
    """Video's 30 is a success (lip-sync's a failure): the store decides by the phase."""
    store.add_watches([WatchSpec("v1", kind="video"), WatchSpec("l1")], "queue")
    assert store.record_terminal(detail("v1", 30, kind="video"), event("v1", "video.succeeded"), [])
    assert store.record_terminal(detail("l1", 30), event("l1", "lip_sync.failed"), [])
    states = {w["job_id"]: (w["kind"], w["state"], w["phase"]) for w in store.list_watches()}
    assert states == {
        "v1": ("video", "succeeded", "succeeded"),
        "l1": ("lip_sync", "failed", "failed"),
    }
    summary = store.watch_summary("v1", kind="video")
    assert summary is not None and summary["state"] == "succeeded"
    assert store.watch_summary("v1") is None


def test_each_call_that_names_a_watch_touches_only_its_kind(store: Store) -> None:
    store.add_watches([WatchSpec("7"), WatchSpec("7", kind="tts")], "queue")
    store.record_poll_error("7", "timeout", store.now() + 60, kind="tts")
    assert store.record_rejection("7", "not found", store.now() + 1, 30, kind="tts") is not None
    lip, tts = store.get_watch("7"), store.get_watch("7", kind="tts")
    assert lip is not None and tts is not None
    assert (lip.errors, tts.errors) == (0, 1)
    assert store.reject_watch("7", "unknown", event("7", "tts.rejected"), [], kind="tts")
    assert store.get_watch("7") is not None  # the lip-sync watch of that id is still active
    assert store.reopen_watch("7", kind="tts") and not store.reopen_watch("7")
    assert store.make_due("7", kind="tts") and store.make_due("7")
    assert store.expire_watch("7", event("7", "tts.expired"), [], store.now() + 1, kind="tts")
    assert store.get_watch("7") is not None and store.get_watch("7").polls == 0  # type: ignore[union-attr]
    events = {(e["kind"], e["type"]) for e in store.list_events()}
    assert events == {("tts", "tts.rejected"), ("tts", "tts.expired")}
    only_tts = store.list_filtered("events", kind="tts")
    assert len(only_tts) == 2 and store.list_filtered("events", kind="lip_sync") == []


def test_a_daemon_event_has_no_kind(store: Store) -> None:
    store.record_operational(event("ops:1", "endpoint.failing"), ["ops"])
    (listed,) = store.list_events()
    assert listed["kind"] is None


def test_what_the_sweeps_ask_per_kind(store: Store) -> None:
    specs = [WatchSpec(f"a{i}", kind="ai_creation") for i in range(5)]
    store.add_watches([*specs, WatchSpec("a1"), WatchSpec("v1", kind="video")], "queue")
    poll(store, JobDetail("v1", 10, 0, "", create_time=1_700_000_500, kind="video"))
    poll(store, JobDetail("a1", 0, 0, "", create_time=1_700_000_100))
    assert store.active_counts_by_kind() == {"ai_creation": 5, "lip_sync": 1, "video": 1}
    assert store.active_ids("ai_creation", 2) == ["a0", "a1"]
    assert store.active_ids("ai_creation", 10, after="a1") == ["a2", "a3", "a4"]
    assert store.oldest_active_create_time(kind="video") == 1_700_000_500
    assert store.newest_active_create_time() == 1_700_000_100
    among = store.active_watches_among(["a1", "v1"], kind="video")
    assert [(w.kind, w.job_id) for w in among] == [("video", "v1")]


def test_discovery_and_its_tombstones_are_per_kind(store: Store) -> None:
    assert store.discover({"d1": 1}, {}, None) == ["d1"]
    store.remove_watches(["d1"])
    assert store.discover({"d1": 1}, {}, None) == []  # removed: not made again
    assert store.discover({"d1": 1}, {}, None, kind="video") == ["d1"]
    assert store.get_watch("d1", kind="video") is not None


def test_a_file_listing_is_per_kind(store: Store) -> None:
    both = [WatchSpec("f1"), WatchSpec("f1", kind="video")]
    assert store.sync_file_watches(both, node="n1") == (2, 0, 0)
    assert store.sync_file_watches([WatchSpec("f1")], node="n1") == (0, 0, 1)
    assert store.get_watch("f1", kind="video") is None and store.get_watch("f1") is not None


def test_the_queue_takes_a_kind_and_an_older_writer_queues_lip_sync(store: Store) -> None:
    store.enqueue([WatchSpec("q1", kind="voice_clone")])
    with store.transaction():
        store._execute("INSERT INTO watch_queue (job_id, enqueued_at) VALUES ('q2', 1.0)")
    kinds: list[object] = []

    def parse(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec:
        kinds.append(kind)
        return WatchSpec(str(job_id), kind=str(kind))

    assert store.take_queue(parse).added == 2
    assert kinds == ["voice_clone", "lip_sync"]
    assert store.get_watch("q1", kind="voice_clone") is not None


# ----------------------------------------------------------------------- schema 17 upgrade


def _old_rows(statuses: list[int | None]) -> dict[str, list[tuple[Any, ...]]]:
    """A schema-17 state's rows: many watches of every status, a queue, events (a job's and
    the daemon's own), deliveries and attempts, discovery's tombstones, a file listing."""
    watches = []
    for i, status in enumerate(statuses):
        state = {20: "succeeded", 30: "failed"}.get(status, "active")  # type: ignore[arg-type]
        data = None if status is None else json.dumps({"status": status})
        source = "file" if i % 7 == 0 else "queue"
        endpoints = '["ops"]' if i % 3 == 0 else None
        created, added = 1_700_000_000 + i, 1_800_000_000.5 + i
        watches.append(
            (f"job-{i:05d}", source, json.dumps({"n": str(i)}), endpoints, state, status,
             i % 100, f"msg {i}", created, added, 3, 2, i % 5, data, i % 2)
        )  # fmt: skip
    return {
        "watches": watches,
        "watch_queue": [(1, "queued-1", '{"k": "v"}', None, 1.5, None),
                        (2, "bad id", None, None, 2.5, "job id must not contain spaces")],
        "events": [("evt_1", "job-00002", "lip_sync.succeeded", 3.0, b'{"a": 1}', 2.0, 1),
                   ("evt_ops", "ops:1", "endpoint.failing", 4.0, b"{}", None, 2)],
        "deliveries": [(1, "evt_1", "ops", "pending", 2, 3.0, 9.0),
                       (2, "evt_ops", "team", "dead", 5, 4.0, None)],
        "delivery_attempts": [(1, 1, 0, 3.5, 0.25, 503, "busy", "failed")],
        "discovered": [("job-gone", 1_700_000_000, 5.0)],
        "file_listings": [("n1", "job-00000"), ("n1", "job-00007")],
    }  # fmt: skip


INSERTS = {
    "watches": "INSERT INTO watches (job_id, source, labels, endpoints, state, status, "
    "progress, msg, create_time, added_at, polls, errors, misses, last_data, reopens) "
    "VALUES ({})",
    "watch_queue": "INSERT INTO watch_queue (seq, job_id, labels, endpoints, enqueued_at, "
    "rejected) VALUES ({})",
    "events": "INSERT INTO events (event_id, job_id, type, created_at, body, "
    "last_seen_running_at, seq) VALUES ({})",
    "deliveries": "INSERT INTO deliveries (id, event_id, endpoint, state, attempts, "
    "created_at, next_attempt_at) VALUES ({})",
    "delivery_attempts": "INSERT INTO delivery_attempts (id, delivery_id, generation, "
    "started_at, duration, status, error, outcome) VALUES ({})",
    "discovered": "INSERT INTO discovered (job_id, create_time, at) VALUES ({})",
    "file_listings": "INSERT INTO file_listings (node, job_id) VALUES ({})",
}


def _statuses() -> list[int | None]:
    cycle: list[int | None] = [0, 10, 20, 30, None]
    return [cycle[i % len(cycle)] for i in range(WATCHES)]


def _snapshot(execute: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the old tables, every old column (the ones schema 17 had)."""
    return table_rows(execute, OLD_TABLES, OLD_COLUMNS)


#: The columns of each old table at schema 17 (read from a schema-17 SQLite state).
OLD_COLUMNS: dict[str, list[str]] = {}


def _schema_17_sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in dialect("sqlite").migrations:
        if number <= 17:
            for statement in _split_sql(script):
                db.execute(statement)
    db.execute("PRAGMA user_version = 17")
    for table in OLD_TABLES:
        OLD_COLUMNS[table] = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    return db


def _fill(execute_many: Any, placeholder: str) -> None:
    for table, rows in _old_rows(_statuses()).items():
        marks = ", ".join([placeholder] * len(rows[0]))
        execute_many(INSERTS[table].format(marks), rows)


def _check_upgraded(store: Store, before: dict[str, list[tuple[Any, ...]]]) -> None:
    after = _snapshot(lambda sql: store._execute(sql).fetchall())
    assert after == before  # every old column of every row as it was
    kinds = {r[0] for r in store._execute("SELECT DISTINCT kind FROM watches").fetchall()}
    assert kinds == {"lip_sync"}
    for table in ("watch_queue", "discovered", "file_listings"):
        rows = store._execute(f"SELECT DISTINCT kind FROM {table}").fetchall()
        assert [r[0] for r in rows] == ["lip_sync"], table
    phases = store._execute("SELECT job_id, status, phase FROM watches").fetchall()
    assert len(phases) == WATCHES
    assert all(phase == OLD_PHASES[status] for _, status, phase in phases)
    events = dict(store._execute("SELECT event_id, kind FROM events").fetchall())
    assert events == {"evt_1": "lip_sync", "evt_ops": None}
    # The daemon reads the upgraded rows: a watch by its id, its kind, its stored phase.
    watch = store.get_watch("job-00001")
    assert watch is not None and (watch.kind, watch.status, watch.phase) == (
        "lip_sync", 10, Phase.RUNNING,
    )  # fmt: skip
    summary = store.watch_summary("job-00002")
    assert summary is not None and summary["phase"] == "succeeded"
    history = store.event_history("evt_1")
    assert history is not None and history["kind"] == "lip_sync"


def test_a_schema_17_sqlite_state_migrates_with_every_watch_lip_sync(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = _schema_17_sqlite(path)
    _fill(db.executemany, "?")
    indexes_before = {
        r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    before = _snapshot(lambda sql: db.execute(sql).fetchall())
    db.close()
    with Store(path) as store:
        _check_upgraded(store, before)
        names = store._execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        # Every index kept (but those a later schema drops on purpose).
        assert indexes_before - DROPPED_INDEXES <= {r[0] for r in names}


@contextmanager
def _schema_17_postgres(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
            "applied_at TIMESTAMPTZ NOT NULL)"
        )
        for number, script in dialect("postgres").migrations:
            if number <= 17:
                for statement in _split_sql(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (%s, now())", (number,))
        yield conn


def test_a_schema_17_postgres_state_migrates_with_every_watch_lip_sync(
    tmp_path: Path, pg_url: str
) -> None:
    _schema_17_sqlite(tmp_path / "columns.db").close()  # the old column lists
    with _schema_17_postgres(pg_url) as conn:
        with conn.cursor() as cursor:
            _fill(cursor.executemany, "%s")
        before = _snapshot(lambda sql: conn.execute(sql).fetchall())
    with Store(pg_url) as store:
        _check_upgraded(store, before)
        # Keyed by (kind, job_id): the same id under another kind is a watch of its own.
        store.add_watches([WatchSpec("job-00001", kind="video")], "queue")
        assert store.get_watch("job-00001", kind="video") is not None
