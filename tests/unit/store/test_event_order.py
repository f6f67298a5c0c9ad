"""Events in the order they were recorded (GET /v1/events pages by it), on both backends:
not by their timestamps, kept across an upgrade from a state without that order."""

from __future__ import annotations

import dataclasses
import json

import pytest

from notifier.models import Event
from notifier.store import Store
from notifier.store.postgres import PostgresBackend
from notifier.store.sqlite import SqliteBackend
from tests.kit import StoreFactory


def _event(n: int, created_at: float) -> Event:
    body = {"type": "vendor.failing", "timestamp": "2026-11-28T12:00:00Z", "data": {"n": n}}
    return Event(f"evt_{n}", f"job_{n}", "vendor.failing", created_at, json.dumps(body).encode())


def _ids(store: Store, after: str | None = None, limit: int = 100) -> list[str] | None:
    page = store.events_after(after, limit)
    return None if page is None else [e["id"] for e in page]


def test_pages_follow_the_recording_not_the_timestamps(make_store: StoreFactory) -> None:
    store = make_store()
    assert _ids(store) == []
    # A clock stepped back between them: the later event has the earlier time.
    for n, created_at in enumerate([300.0, 100.0, 200.0, 200.0]):
        store.record_operational(_event(n, created_at), [])
    assert _ids(store) == ["evt_0", "evt_1", "evt_2", "evt_3"]
    assert _ids(store, limit=2) == ["evt_0", "evt_1"]
    assert _ids(store, "evt_1") == ["evt_2", "evt_3"]
    assert _ids(store, "evt_3") == []
    assert _ids(store, "evt_unknown") is None
    page = store.events_after(None, 1)
    assert page == [
        {"id": "evt_0", "type": "vendor.failing", "timestamp": "2026-11-28T12:00:00Z",
         "data": {"n": 0}},
    ]  # fmt: skip
    # The same event again changes nothing (one event per job and type).
    store.record_operational(_event(0, 400.0), [])
    assert _ids(store) == ["evt_0", "evt_1", "evt_2", "evt_3"]


def test_events_of_an_older_schema_get_an_order_on_upgrade(
    make_store: StoreFactory, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls: type[SqliteBackend | PostgresBackend] = (
        SqliteBackend if backend == "sqlite" else PostgresBackend
    )
    # The schema before the migration that orders events (later ones left out too).
    ordered = next(n for n, script in cls.dialect.migrations if "events ADD COLUMN seq" in script)
    older = [(n, script) for n, script in cls.dialect.migrations if n < ordered]
    before = dataclasses.replace(cls.dialect, migrations=older)
    assert before.version < cls.dialect.version
    with monkeypatch.context() as patch:
        patch.setattr(cls, "dialect", before)
        old = make_store()
        mark = "?" if backend == "sqlite" else "%s"
        for n, created_at in [(0, 300.0), (1, 100.0), (2, 200.0)]:
            event = _event(n, created_at)
            old._execute(
                f"INSERT INTO events (event_id, job_id, type, created_at, body)"
                f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
                (event.event_id, event.job_id, event.type, event.created_at, event.body),
            )
        old.close()
    store = make_store()
    # Older events: in the order of their times (what was known then).
    assert _ids(store) == ["evt_1", "evt_2", "evt_0"]
    store.record_operational(_event(3, 50.0), [])
    assert _ids(store, "evt_0") == ["evt_3"]
