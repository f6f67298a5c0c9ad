"""The intake API's real aiohttp app on 127.0.0.1, over real HTTP (httpx), on a real store."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web

from notifier.intake.bodies import MAX_IDS
from notifier.intake.http_api import MAX_BODY, IntakeApi
from notifier.models import (
    JOB_ID_RE,
    LABEL_KEY_RE,
    MAX_LABEL_NUMBER,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    Event,
)
from notifier.service.http_server import ServerThread
from tests.kit import StoreFactory, fail_as_before
from tests.kit.intake_api import (  # noqa: F401
    ENDPOINTS,
    TOKEN_A,
    TOKEN_B,
    Api,
    _record,
    api_fixture,
    sqlite_backend,
)

# -- auth -------------------------------------------------------------------------------


def test_no_token_wrong_token_and_wrong_scheme_get_a_bare_401(api: Api) -> None:
    body = {"ids": ["job1"]}
    attempts = [
        api.client(None).post("/v1/watches", json=body),
        api.client("tok-c-not-a-known-token").post("/v1/watches", json=body),
        api.client(TOKEN_A[:-1]).post("/v1/watches", json=body),
        httpx.post(f"{api.url}/v1/watches", json=body, headers={"Authorization": TOKEN_A}),
        httpx.post(
            f"{api.url}/v1/watches", json=body, headers={"Authorization": f"Basic {TOKEN_A}"}
        ),
        # An unknown path says no more than a known one: no map of the API without a token.
        api.client(None).get("/v1/secret-admin"),
        api.client(None).get("/v1/watches/job1"),
        api.client(None).get("/v1/events"),
    ]
    for response in attempts:
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.store.watch_summary("job1") is None


def test_each_configured_token_is_accepted(api: Api) -> None:
    for i, token in enumerate([TOKEN_A, TOKEN_B]):
        response = api.client(token).post("/v1/watches", json={"ids": [f"job{i}"]})
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1
    assert api.client(TOKEN_B).get("/v1/watches/job0").status_code == 200


def test_token_rotation_takes_effect_on_the_next_request(make_store: StoreFactory) -> None:
    intake = IntakeApi(make_store(), [TOKEN_A], ENDPOINTS)
    with ServerThread(intake.app) as server, httpx.Client(base_url=server.url) as client:
        auth_a = {"Authorization": f"Bearer {TOKEN_A}"}
        auth_b = {"Authorization": f"Bearer {TOKEN_B}"}
        assert client.get("/v1/events", headers=auth_a).status_code == 200
        assert client.get("/v1/events", headers=auth_b).status_code == 401
        server.call(_set_tokens(intake, [TOKEN_B]))
        assert client.get("/v1/events", headers=auth_a).status_code == 401
        assert client.get("/v1/events", headers=auth_b).status_code == 200


async def _set_tokens(intake: IntakeApi, tokens: list[str]) -> None:
    intake.set_tokens(tokens)


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object, got list"),
        (b'{"ids": "job1"}', "ids: must be a non-empty list of job ids, got string"),
        (b'{"ids": []}', "ids: must be a non-empty list of job ids, got list"),
        (b'{"labels": {}}', "ids: must be a non-empty list of job ids, got null"),
        (b'{"ids": [42]}', "ids[0]: job id must be a string, got integer 42"),
        (b'{"ids": ["bad id!"]}', "ids[0]: invalid job id 'bad id!'"),
        (
            b'{"ids": ["j1"], "labels": ["a"]}',
            "labels: labels must be a mapping of key: value, got list",
        ),
        # Not taken as "no labels": anything but an object is refused, as documented.
        (
            b'{"ids": ["j1"], "labels": null}',
            "labels: labels must be a mapping of key: value, got null",
        ),
        (
            b'{"ids": ["j1"], "labels": []}',
            "labels: labels must be a mapping of key: value, got list",
        ),
        (
            b'{"ids": ["j1"], "labels": ""}',
            "labels: labels must be a mapping of key: value, got string",
        ),
        (
            b'{"ids": ["j1"], "labels": 0}',
            "labels: labels must be a mapping of key: value, got integer",
        ),
        (
            b'{"ids": ["j1"], "labels": false}',
            "labels: labels must be a mapping of key: value, got boolean",
        ),
        (
            b'{"ids": ["j1"], "labels": {"n": 9007199254740992}}',
            "labels: label 'n' must be a number",
        ),
        (b'{"ids": ["j1"], "labels": {"k": {"x": 1}}}', "labels: label 'k' must have a scalar"),
        (
            b'{"ids": ["j1"], "endpoints": "ops"}',
            "endpoints: must be a list of endpoint names, got string",
        ),
        (
            b'{"ids": ["j1"], "endpoints": ["ops", "pager"]}',
            "endpoints[1]: unknown endpoint 'pager' (configured: ops, analytics)",
        ),
        (b'{"ids": ["j1"], "reopen": "yes"}', "reopen: must be true or false, got string"),
        (b'{"ids": ["j1"], "colour": "red"}', "unknown key(s) colour (allowed: ids, labels"),
    ],
)
def test_bad_bodies_get_400_naming_the_problem(api: Api, body: bytes, expected: str) -> None:
    response = api.client().post(
        "/v1/watches", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    assert api.store.list_watches() == []


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json-patch+json",
        "application/json; charset=latin-1",
        "application/json; boundary=x",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_that_is_not_json_by_its_content_type_gets_415(
    api: Api, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with api.client() as client:
        client.headers.pop("content-type", None)
        response = client.post("/v1/watches", content=b'{"ids": ["job1"]}', headers=headers)
    assert response.status_code == 415, response.text
    shown = repr(content_type) if content_type else "none"
    assert response.json() == {
        "error": f"Content-Type must be application/json (optionally with charset=utf-8), "
        f"got {shown}"
    }
    assert api.store.list_watches() == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8"],
)
def test_json_with_a_utf8_charset_is_taken(api: Api, content_type: str) -> None:
    response = api.client().post(
        "/v1/watches", content=b'{"ids": ["job1"]}', headers={"content-type": content_type}
    )
    assert response.status_code == 202, response.text


def test_too_many_ids_is_400_and_the_maximum_is_taken(api: Api) -> None:
    too_many = {"ids": [f"job{i}" for i in range(MAX_IDS + 1)]}
    response = api.client().post("/v1/watches", json=too_many)
    assert response.status_code == 400
    assert response.json()["error"] == f"ids: at most {MAX_IDS} per request, got {MAX_IDS + 1}"
    assert api.store.list_watches() == []
    response = api.client().post("/v1/watches", json={"ids": too_many["ids"][:MAX_IDS]})
    assert response.status_code == 202
    assert response.json()["accepted"] == MAX_IDS


def test_bad_paths_and_queries(api: Api) -> None:
    client = api.client()
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/nothing").json() == {"error": "not found"}
    response = client.put("/v1/watches/job1")
    assert response.status_code == 405
    assert "error" in response.json()
    response = client.get("/v1/watches/bad%20id")
    assert response.status_code == 400
    assert "invalid job id" in response.json()["error"]
    for limit in ("0", "-1", "abc", "1001"):
        response = client.get("/v1/events", params={"limit": limit})
        assert response.status_code == 400
        assert response.json()["error"].startswith("limit: must be a whole number from 1 to")


# -- limits -----------------------------------------------------------------------------


def test_bodies_over_one_megabyte_get_413(api: Api) -> None:
    big = json.dumps({"ids": ["job1"], "labels": {"pad": "x" * MAX_BODY}}).encode()
    response = api.client().post(
        "/v1/watches", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": f"request body over {MAX_BODY} bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: found out while reading
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    response = api.client().post(
        "/v1/watches", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert api.store.list_watches() == []


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes; socket.timeout (10 s) if it never does."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_client_sending_headers_slowly_is_cut_off(api: Api) -> None:
    with _raw(api.port) as sock:
        sock.sendall(b"POST /v1/watches HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        assert _read_all(sock) == b""  # closed by the server, long before our 10 s
    with _raw(api.port) as sock:  # an idle connection too
        assert _read_all(sock) == b""


def test_a_client_sending_its_body_slowly_gets_408_and_is_cut_off(api: Api) -> None:
    with _raw(api.port) as sock:
        sock.sendall(
            b"POST /v1/watches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN_A.encode() + b"\r\nContent-Length: 100\r\n\r\n"
            b'{"ids": ['
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request not received within 0.5s" in answer
    assert api.store.list_watches() == []


# -- add / get / delete -----------------------------------------------------------------


def test_add_get_delete(api: Api) -> None:
    client = api.client()
    response = client.post(
        "/v1/watches",
        json={"ids": ["job1", "job2", "job1"], "labels": {"customer": "acme", "n": 7}},
    )
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "new": 2,
        "finished": [],
        "kind": "lip_sync",
        "account": "default",
    }
    # A known watch: labels merged, endpoints replaced, not new.
    response = client.post(
        "/v1/watches", json={"ids": ["job1"], "labels": {"batch": "b1"}, "endpoints": ["ops"]}
    )
    assert response.json() == {
        "accepted": 1,
        "new": 0,
        "finished": [],
        "kind": "lip_sync",
        "account": "default",
    }

    row = client.get("/v1/watches/job1").json()
    assert row["job_id"] == "job1"
    assert row["state"] == "active"
    assert row["labels"] == {"batch": "b1", "customer": "acme", "n": "7"}
    assert row["endpoints"] == ["ops"]
    assert row["seen"] == row["polls"] == 0
    assert client.get("/v1/watches/job2").json()["endpoints"] is None

    assert client.delete("/v1/watches/job1").status_code == 204
    response = client.get("/v1/watches/job1")
    assert response.status_code == 404
    assert response.json() == {"error": "no watch for job job1"}
    assert client.delete("/v1/watches/job1").status_code == 404
    assert [w["job_id"] for w in api.store.list_watches()] == ["job2"]


def test_a_finished_job_is_not_watched_again(api: Api) -> None:
    client = api.client()
    client.post("/v1/watches", json={"ids": ["done1", "gone1", "typo1"]})
    fail_as_before(api.store, "gone1", "unknown id")  # as an old database has it
    unknown = Event("evt_typo1", "typo1", "lip_sync.rejected", 1.0, b"{}")
    assert api.store.reject_watch("typo1", "vendor does not know this id", unknown, [])
    assert client.get("/v1/watches/typo1").json()["state"] == "rejected"
    _record(api.store, 1, job_id="done1")
    response = client.post("/v1/watches", json={"ids": ["done1", "gone1", "typo1", "new1"]})
    assert response.json() == {
        "accepted": 1,
        "new": 1,
        "finished": ["done1", "gone1", "typo1"],
        "kind": "lip_sync",
        "account": "default",
    }
    response = client.post("/v1/watches", json={"ids": ["gone1", "typo1"], "reopen": True})
    assert response.json() == {
        "accepted": 2,
        "new": 0,
        "finished": [],
        "kind": "lip_sync",
        "account": "default",
    }
    assert client.get("/v1/watches/gone1").json()["state"] == "active"
    assert client.get("/v1/watches/typo1").json()["state"] == "active"


# -- events -----------------------------------------------------------------------------


def test_events_page_in_recorded_order(api: Api) -> None:
    client = api.client()
    assert client.get("/v1/events").json() == {"events": [], "next": None}
    recorded = [_record(api.store, n) for n in range(5)]  # all at the same created_at
    first = client.get("/v1/events", params={"limit": 2}).json()
    assert [e["id"] for e in first["events"]] == recorded[:2]
    assert first["events"][0] == {
        "id": recorded[0],
        "type": "lip_sync.succeeded",
        "timestamp": "2026-11-28T12:00:00Z",
        "data": {"id": "job_w_0", "status": 20},
    }
    assert first["next"] == recorded[1]
    rest = client.get("/v1/events", params={"after": first["next"]}).json()
    assert [e["id"] for e in rest["events"]] == recorded[2:]
    empty = client.get("/v1/events", params={"after": rest["next"]}).json()
    assert empty == {"events": [], "next": recorded[-1]}  # the same cursor, to ask again
    response = client.get("/v1/events", params={"after": "evt_never"})
    assert response.status_code == 404
    assert "unknown event evt_never" in response.json()["error"]


def test_openapi_is_public_and_lists_every_route(api: Api) -> None:
    response = httpx.get(f"{api.url}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    operations.discard(("/v1/watches/{id}", "parameters"))
    operations.discard(("/v1/chanjing/callback/{callback_token}", "parameters"))
    assert operations == {
        ("/v1/chanjing/callback/{callback_token}", "post"),
        ("/v1/watches", "post"),
        ("/v1/watches/{id}", "get"),
        ("/v1/watches/{id}", "delete"),
        ("/v1/events", "get"),
        ("/openapi.json", "get"),
    }
    assert (
        doc["paths"]["/v1/watches"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]["ids"]["maxItems"]
        == MAX_IDS
    )
    # every $ref resolves
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/')[1:]}:
        node = doc
        for key in ref.split("/"):
            node = node[key]


def test_openapi_states_the_servers_own_rules(api: Api) -> None:
    """From the patterns and limits the handlers check with, not copies of them."""
    anonymous = httpx.get(f"{api.url}/openapi.json").json()
    post = anonymous["paths"]["/v1/watches"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["ids"]["items"]["pattern"] == JOB_ID_RE.pattern
    labels = body["properties"]["labels"]
    assert labels["type"] == "object"  # so null, [], "", 0 and false are not labels
    assert labels["maxProperties"] == MAX_LABELS
    assert labels["propertyNames"] == {"pattern": LABEL_KEY_RE.pattern}
    value_kinds = labels["additionalProperties"]["anyOf"]
    assert {"type": "string", "maxLength": MAX_LABEL_VALUE} in value_kinds
    assert {
        "type": "number",
        "minimum": -MAX_LABEL_NUMBER,
        "maximum": MAX_LABEL_NUMBER,
    } in value_kinds
    for status in ("202", "400", "401", "408", "409", "413", "415", "503"):
        assert status in post["responses"], status
    assert post["responses"]["202"]["links"]["GetWatch"] == {
        "operationId": "getWatch",
        "parameters": {
            "id": "$request.body#/ids/0",
            "kind": "$response.body#/kind",
            "account": "$response.body#/account",
        },
        "description": "The first id's watch",
    }
    assert post["responses"]["202"]["links"]["DeleteWatch"]["operationId"] == "deleteWatch"
    # The configured endpoint names only for a client with a token.
    assert body["properties"]["endpoints"]["items"] == {"type": "string"}
    with api.client() as client:
        known = client.get("/openapi.json").json()
    endpoints = known["paths"]["/v1/watches"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["properties"]["endpoints"]
    assert endpoints["items"] == {"enum": ENDPOINTS}
    callback = anonymous["paths"]["/v1/chanjing/callback/{callback_token}"]["post"]
    envelope = callback["requestBody"]["content"]["application/json"]["schema"]
    by_data, by_top = envelope["anyOf"]
    assert by_data["required"] == ["data"]
    assert by_data["properties"]["data"]["required"] == ["id"]
    assert by_data["properties"]["data"]["properties"]["id"]["pattern"] == JOB_ID_RE.pattern
    assert by_top["required"] == ["id"]
    assert "code" not in json.dumps(envelope["anyOf"]) and "msg" not in by_data["properties"]
    for status in ("202", "400", "404", "413", "415", "503"):
        assert status in callback["responses"], status


def test_requests_are_counted_by_route_and_status(api: Api) -> None:
    client = api.client()
    client.post("/v1/watches", json={"ids": ["job1"]})
    client.get("/v1/watches/job1")
    client.get("/v1/watches/job2")
    api.client(None).get("/v1/events")
    text = api.metrics.render().decode()
    for labels in (
        'method="POST",route="/v1/watches",status="202"',
        'method="GET",route="/v1/watches/{id}",status="200"',
        'method="GET",route="/v1/watches/{id}",status="404"',
        'method="GET",route="/v1/events",status="401"',
    ):
        assert f"chanjing_intake_requests_total{{{labels}}} 1.0" in text, text


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_events_paging_while_recording_has_no_gaps_or_repeats(
    api: Api, make_store: StoreFactory
) -> None:
    """Three writers on connections of their own record events while a client pages
    through them; what the client collects is every event once, in the stored order."""
    per_writer, writers = 40, 3
    done = threading.Event()

    def write(name: str) -> None:
        store = make_store()
        for n in range(per_writer):
            _record(store, n, writer=name)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[str] = []
    cursor: str | None = None
    with api.client() as client:
        while True:
            finished = done.is_set()
            params = {"limit": 7, **({"after": cursor} if cursor else {})}
            page = client.get("/v1/events", params=params).json()
            seen += [e["id"] for e in page["events"]]
            cursor = page["next"]
            if finished and not page["events"]:
                break
            if not any(t.is_alive() for t in threads):
                done.set()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == per_writer * writers
    stored = api.store.events_after(None, 1000) or []
    assert seen == [e["id"] for e in stored]


def test_a_state_that_cannot_be_written_is_503_with_retry_after(api: Api) -> None:
    # As the store leaves it after a failed write (disk full): later writes fail fast.
    api.store.write_failure = (time.monotonic(), "the disk is full")
    response = api.client().post("/v1/watches", json={"ids": ["job1"]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": "the state database is unavailable; try again"}
    api.store.write_failure = None
    assert api.client().post("/v1/watches", json={"ids": ["job1"]}).status_code == 202


def test_another_route_joins_the_listener_with_its_own_secret(
    make_store: StoreFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """How the vendor-callback path plugs in: public, its secret in the path, never logged."""
    intake = IntakeApi(make_store(), [TOKEN_A], ENDPOINTS)
    secret = "path-secret-9d8c7b6a5f4e"

    async def hook(request: web.Request) -> web.Response:
        found = request.match_info["token"] == secret
        return web.json_response({}, status=200 if found else 404)

    intake.add_route("POST", "/v1/hook/{token}", hook, "hook", public=True, secret_path=True)
    with ServerThread(intake.app) as server:
        assert httpx.post(f"{server.url}/v1/hook/{secret}").status_code == 200
        assert httpx.post(f"{server.url}/v1/hook/wrong-secret-0000").status_code == 404
        assert httpx.get(f"{server.url}/v1/events").status_code == 401  # still protected
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("/v1/hook/{token}") == 2
    assert secret not in text and "wrong-secret-0000" not in text
