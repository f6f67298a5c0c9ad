from __future__ import annotations

import json

import pytest

from notifier.delivery.retry import next_attempt_delay
from notifier.delivery.transition import build_event, new_event_id, route
from notifier.models import JobDetail, SendResult

SCHEDULE = [5.0, 30.0, 120.0]


def detail(status: int, progress: int = 0) -> JobDetail:
    return JobDetail(
        "j1",
        status,
        progress,
        "success",
        "https://v/1.mp4",
        "https://v/1.jpg",
        12345,
        1_738_636_800,
    )


def test_retry_schedule_then_dead() -> None:
    fail = SendResult(ok=False, status=500)
    assert next_attempt_delay(1, fail, SCHEDULE, 0.5) == pytest.approx(5.0)
    assert next_attempt_delay(3, fail, SCHEDULE, 0.0) == pytest.approx(108.0)
    assert next_attempt_delay(3, fail, SCHEDULE, 0.999) == pytest.approx(132.0, abs=0.1)
    assert next_attempt_delay(4, fail, SCHEDULE) is None
    assert next_attempt_delay(1, SendResult(ok=False, permanent=True), SCHEDULE) is None
    assert next_attempt_delay(1, SendResult(ok=False, retry_after=42), SCHEDULE) == 42
    assert next_attempt_delay(1, SendResult(ok=False, retry_after=1e9), SCHEDULE) == 86400
    assert next_attempt_delay(1, fail, []) is None
    with pytest.raises(ValueError):
        next_attempt_delay(1, SendResult(ok=True), SCHEDULE)


def test_event_body_matches_contract() -> None:
    ev = build_event(detail(20, 100), {"team": "video"}, 1_795_795_200.0)
    body = json.loads(ev.body)
    assert ev.type == body["type"] == "lip_sync.succeeded"
    assert body["timestamp"] == "2026-11-27T16:00:00Z"
    assert body["data"] == {
        "id": "j1",
        "status": 20,
        "progress": 100,
        "msg": "success",
        "video_url": "https://v/1.mp4",
        "preview_url": "https://v/1.jpg",
        "duration": 12345,
        "create_time": 1_738_636_800,
        "labels": {"team": "video"},
        "account": "default",
    }
    assert build_event(detail(30), {}, 0).type == "lip_sync.failed"


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id(1000.0 + i) for i in range(50)]
    assert len(set(ids)) == 50 and ids == sorted(ids)
    assert all(i.startswith("evt_") for i in ids)


def test_route() -> None:
    subs = [("ops", ["lip_sync.succeeded", "lip_sync.failed"]), ("team", ["lip_sync.failed"])]
    assert route("lip_sync.failed", None, subs) == ["ops", "team"]
    assert route("lip_sync.succeeded", None, subs) == ["ops"]
    assert route("lip_sync.failed", ["team"], subs) == ["team"]
    assert route("lip_sync.succeeded", ["team"], subs) == []
