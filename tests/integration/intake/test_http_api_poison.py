"""Issue 18: requests that made the intake API answer 500 with a traceback, or took a value
in that later stopped polling. Each gets a 400 or 401 naming the problem, one log line."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from notifier.intake import http_api
from notifier.models import MAX_LABELS, MAX_LABELS_TEXT
from tests.kit import StoreFactory
from tests.kit.intake_api import TOKEN_A, Api, _record, api_fixture, sqlite_backend  # noqa: F401

JSON_BODY = {"content-type": "application/json"}
DEEP = b'{"ids": ["j1"], "labels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_json_nested_100k_deep_is_a_400(api: Api) -> None:
    with capture_logs() as logs, api.client() as client:
        response = client.post("/v1/watches", content=DEEP, headers=JSON_BODY)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    assert not [e for e in logs if e["log_level"] == "error"]


def test_limit_must_be_ascii_digits_and_short(api: Api) -> None:
    with api.client() as client:
        for limit in ("²", "1" * 5000, "-1", "1e3", "0"):
            response = client.get("/v1/events", params={"limit": limit})
            assert response.status_code == 400, limit
            assert len(response.json()["error"]) < 200


def test_a_header_that_is_not_utf8_gets_401_not_500(api: Api) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(
            b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe-not-utf8\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]


def test_labels_that_could_never_be_sent_are_refused_and_stored_ones_read_back(
    api: Api,
) -> None:
    with api.client() as client:
        surrogate = b'{"ids": ["j1"], "labels": {"k": "\\ud800"}}'
        response = client.post("/v1/watches", content=surrogate, headers=JSON_BODY)
        assert response.status_code == 400 and "surrogate" in response.json()["error"]
        newline = client.post("/v1/watches", json={"ids": ["probe-nl\n"]})
        assert newline.status_code == 400
        ok = client.post("/v1/watches", json={"ids": ["j2"], "labels": {"rush": True, "n": 2}})
        assert ok.status_code == 202
        assert client.get("/v1/watches/j2").json()["labels"] == {"rush": "true", "n": "2"}


def test_one_unreadable_queue_row_is_rejected_and_the_rest_go_on(
    make_store: StoreFactory,
) -> None:
    from notifier.intake.queue import take_queue

    store = make_store()
    deep = "[" * 100_000 + "]" * 100_000
    store._execute("INSERT INTO watch_queue (job_id, labels) VALUES (?, ?)", ("bad1", deep))
    store._execute("INSERT INTO watch_queue (job_id) VALUES (?)", ("good1",))
    result = take_queue(store, None)
    assert result.added == 1
    ((_seq, reason),) = result.rejected
    assert "nested too deeply" in reason
    assert take_queue(store, None).rejected == []  # rejected once, kept aside: not again
    assert store.watch_summary("good1") is not None


def test_labels_merged_into_a_watch_stay_within_their_limits(api: Api) -> None:
    """20 POSTs of big labels used to pile 16.5 MB onto one watch, sent in each of its events."""
    with api.client() as client:
        value = "x" * 500
        answers = [
            client.post("/v1/watches", json={"ids": ["grow1"], "labels": {f"k{i}": value}})
            for i in range(20)
        ]
        codes = [a.status_code for a in answers]
        # 409: the body alone is fine, the labels the watch has already are in the way.
        assert codes[0] == 202 and 409 in codes and 400 not in codes, codes
        refused = next(a for a in answers if a.status_code == 409)
        assert "grow1: with the labels it has" in refused.json()["error"]
        labels = client.get("/v1/watches/grow1").json()["labels"]
    assert len(labels) <= MAX_LABELS
    assert sum(len(k) + len(v) for k, v in labels.items()) <= MAX_LABELS_TEXT


def test_a_page_of_events_stops_at_its_size_and_goes_on(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [_record(api.store, n) for n in range(10)]
    one = len(api.store.events_after(None, 1)[0]["data"]["id"]) + 100  # type: ignore[index]
    monkeypatch.setattr(http_api, "MAX_PAGE_BYTES", 3 * one)
    seen: list[str] = []
    after: str | None = None
    with api.client() as client:
        for _ in range(20):
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = client.get("/v1/events", params=params).json()
            if not page["events"]:
                break
            assert len(page["events"]) < 10  # cut by size, not by the limit
            seen += [e["id"] for e in page["events"]]
            after = page["next"]
    assert seen == ids
