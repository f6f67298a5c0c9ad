"""Issue 21, item 3, over real HTTP: ``POST /v1/watches`` takes ``kind``; ``GET`` and
``DELETE /v1/watches/{id}`` take ``?kind=`` (absent: lip_sync); /openapi.json says so."""

from __future__ import annotations

from notifier.kinds import KINDS, kind_problem
from tests.kit.intake_api import Api, api_fixture, sqlite_backend  # noqa: F401


def test_one_id_under_two_kinds_is_two_watches(api: Api) -> None:
    client = api.client()
    assert client.post("/v1/watches", json={"ids": ["42"]}).json()["new"] == 1
    answer = client.post("/v1/watches", json={"ids": ["42"], "kind": "video"})
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 1,
        "new": 1,
        "finished": [],
        "kind": "video",
        "account": "default",
    }
    lip, video = client.get("/v1/watches/42").json(), client.get("/v1/watches/42?kind=video")
    assert (lip["kind"], video.json()["kind"]) == ("lip_sync", "video")
    assert video.json()["phase"] is None and video.json()["state"] == "active"
    assert client.get("/v1/watches/42?kind=tts").status_code == 404

    assert client.delete("/v1/watches/42?kind=video").status_code == 204
    assert client.get("/v1/watches/42?kind=video").status_code == 404
    assert client.get("/v1/watches/42").status_code == 200
    assert [(w["kind"], w["job_id"]) for w in api.store.list_watches()] == [("lip_sync", "42")]


def test_an_unknown_kind_is_400_in_the_kind_tables_words(api: Api) -> None:
    client = api.client()
    wording = kind_problem("Video")
    answer = client.post("/v1/watches", json={"ids": ["42"], "kind": "Video"})
    assert answer.status_code == 400
    assert answer.json()["problems"] == [{"loc": ["kind"], "msg": wording}]
    assert answer.json()["error"] == f"kind: {wording}"
    for method in (client.get, client.delete):
        response = method("/v1/watches/42?kind=Video")
        assert response.status_code == 400 and response.json() == {"error": f"kind: {wording}"}
    assert api.store.list_watches() == []


def test_openapi_names_the_kinds(api: Api) -> None:
    document = api.client().get("/openapi.json").json()
    body = document["paths"]["/v1/watches"]["post"]["requestBody"]["content"]
    kind = body["application/json"]["schema"]["properties"]["kind"]
    assert kind["enum"] == list(KINDS) and kind["default"] == "lip_sync"
    params = document["paths"]["/v1/watches/{id}"]["parameters"]
    (query,) = [p for p in params if p["in"] == "query" and p["name"] == "kind"]
    assert query["name"] == "kind" and query["schema"]["enum"] == list(KINDS)
    watch = document["components"]["schemas"]["Watch"]["properties"]
    assert watch["kind"]["enum"] == list(KINDS)
    assert "phase" in watch
