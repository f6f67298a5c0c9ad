"""A bad ``POST /v1/watches`` body is a 400 that lists every problem, pydantic-style
(``{"loc": [...], "msg": ...}``), in the parser's words; ``error`` stays the first of them,
as before (issue 20, item 3). The real app on 127.0.0.1 over real HTTP, on a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notifier.intake.http_api import IntakeApi
from notifier.models import unknown_endpoint
from notifier.service.http_server import ServerThread
from notifier.store import Store

TOKEN = "tok-problems-4f1d9c2b7e6a5d3c"
ENDPOINTS = ["ops", "analytics"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, Store]]:
    store = Store(tmp_path / "state.db")
    intake = IntakeApi(store, [TOKEN], ENDPOINTS)
    with (
        ServerThread(intake.app) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as http,
    ):
        yield http, store
    store.close()


def test_every_problem_of_a_body_is_listed_and_nothing_is_kept(
    client: tuple[httpx.Client, Store],
) -> None:
    http, store = client
    body = {
        "ids": ["job1", "bad id!", 42],
        "labels": {"b a d": "x"},
        "endpoints": ["ops", "pager"],
        "reopen": "yes",
    }
    response = http.post("/v1/watches", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert [p["loc"] for p in answer["problems"]] == [
        ["ids", 1],
        ["ids", 2],
        ["labels"],
        ["endpoints", 1],
        ["reopen"],
    ]
    by_loc = {tuple(p["loc"]): p["msg"] for p in answer["problems"]}
    assert by_loc["endpoints", 1] == unknown_endpoint("pager", ENDPOINTS)
    assert by_loc["ids", 2].startswith("job id must be a string, got integer 42")
    assert answer["error"] == f"ids[1]: {by_loc['ids', 1]}"
    assert store.list_watches() == []


def test_a_body_that_is_no_object_has_no_list(client: tuple[httpx.Client, Store]) -> None:
    http, _store = client
    response = http.post("/v1/watches", json=[1, 2])
    assert response.status_code == 400
    assert response.json() == {"error": "body must be a JSON object, got list"}


def test_the_document_describes_the_list(client: tuple[httpx.Client, Store]) -> None:
    http, _store = client
    error = http.get("/openapi.json").json()["components"]["schemas"]["Error"]
    problems = error["properties"]["problems"]
    assert problems["type"] == "array"
    assert problems["items"]["required"] == ["loc", "msg"]
    assert error["required"] == ["error"]
