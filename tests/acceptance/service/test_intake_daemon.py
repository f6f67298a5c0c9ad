"""The intake API in the real daemon process: a job added over HTTP is polled from the
simulator and delivered to the receiver; its event can be pulled; tokens follow a reload and
never reach the log; an address that cannot be bound stops the start."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest

from notifier.tools.receiver import Receiver
from tests.kit import ReceiverServer, Simulator, Workspace, free_port

pytestmark = pytest.mark.slow

TOKEN_A = "intake-a-5b0f2d7c9e1a3b4c"
TOKEN_B = "intake-b-0a9b8c7d6e5f4a3b"
TOKEN_C = "intake-c-1f2e3d4c5b6a7980"


def _enable(ws: Workspace, tokens: list[str], port: int | None = None) -> str:
    port = port or free_port()
    ws.env["INTAKE_TOKEN"] = TOKEN_A
    ws.config["intake"] = {
        "listen": f"127.0.0.1:{port}",
        "tokens": ["${INTAKE_TOKEN}" if t == TOKEN_A else t for t in tokens],
    }
    ws.write_config()
    return f"http://127.0.0.1:{port}"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_job_added_over_http_is_delivered_and_its_event_can_be_pulled(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, [TOKEN_A, TOKEN_B])
    simulator.sim.add_job("apijob1", queue_s=0.2, run_s=0.5, outcome=20)
    daemon = workspace.start()
    daemon.wait_ready()
    with httpx.Client(base_url=url, timeout=10) as client:
        response = client.post(
            "/v1/watches",
            json={"ids": ["apijob1"], "labels": {"customer": "acme"}},
            headers=_auth(TOKEN_A),
        )
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 1
        assert client.post("/v1/watches", json={"ids": ["x1"]}).status_code == 401
        client.post("/v1/watches", json={"ids": ["x1"]}, headers=_auth(TOKEN_C))

        def arrived(rec: Receiver) -> bool:
            return any(r.payload["data"]["id"] == "apijob1" for r in rec.accepted("/ops"))

        assert receiver.receiver.wait_for_blocking(arrived, timeout=30), receiver.receiver.summary()
        delivered = next(r for r in receiver.receiver.accepted("/ops"))
        assert delivered.payload["data"]["labels"] == {"customer": "acme"}

        page = client.get("/v1/events", headers=_auth(TOKEN_B)).json()
        assert [e["id"] for e in page["events"]] == [delivered.webhook_id]
        assert page["events"][0]["data"] == delivered.payload["data"]
        assert page["next"] == delivered.webhook_id

        row = client.get("/v1/watches/apijob1", headers=_auth(TOKEN_B)).json()
        assert row["state"] == "succeeded"
        (listed,) = [w for w in workspace.cli_json("watch", "list") if w["job_id"] == "apijob1"]
        assert row == listed  # the shape of `watch list --json`, the same values

    records = daemon.records()
    requests = [r for r in records if r.get("event") == "intake request"]
    assert {(r["method"], r["path"], r["status"]) for r in requests} >= {
        ("POST", "/v1/watches", 202),
        ("POST", "/v1/watches", 401),
        ("GET", "/v1/events", 200),
        ("GET", "/v1/watches/apijob1", 200),
    }
    assert all(isinstance(r["duration_ms"], float | int) for r in requests)
    output = daemon.output
    for token in (TOKEN_A, TOKEN_B, TOKEN_C):
        assert token not in output
    # A POST's ids are not logged by the API (a batch would flood the log).
    intake_lines = [r for r in records if r.get("component") == "intake"]
    assert not any("x1" in str(r.values()) for r in intake_lines)
    assert daemon.stop() == 0


def test_reload_changes_the_tokens(workspace: Workspace) -> None:
    url = _enable(workspace, [TOKEN_A])
    daemon = workspace.start()
    daemon.wait_ready()
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/events", headers=_auth(TOKEN_A)).status_code == 200
        assert client.get("/v1/events", headers=_auth(TOKEN_B)).status_code == 401

        _enable(workspace, [TOKEN_B], port=int(url.rsplit(":", 1)[1]))
        daemon.popen.send_signal(signal.SIGHUP)
        assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)

        assert client.get("/v1/events", headers=_auth(TOKEN_A)).status_code == 401
        assert client.get("/v1/events", headers=_auth(TOKEN_B)).status_code == 200
        response = client.post("/v1/watches", json={"ids": ["r1"]}, headers=_auth(TOKEN_B))
        assert response.status_code == 202

        # A move: the listener follows intake.listen.
        moved = _enable(workspace, [TOKEN_B])
        daemon.popen.send_signal(signal.SIGHUP)
        assert daemon.wait_for_log(
            lambda r: r.get("event") == "intake listening" and r.get("url") == moved, timeout=10
        )
    with httpx.Client(base_url=moved, timeout=10) as client:
        assert client.get("/v1/watches/r1", headers=_auth(TOKEN_B)).status_code == 200
    for token in (TOKEN_A, TOKEN_B):
        assert token not in daemon.output
    assert daemon.stop() == 0


def test_an_address_that_cannot_be_bound_stops_the_start(workspace: Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _enable(workspace, [TOKEN_A], port=port)
        daemon = workspace.start()
        assert daemon.popen.wait(20) == 1
    daemon.stop()
    (line,) = [r for r in daemon.records() if r.get("event") == "cannot start: intake.listen"]
    assert line["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert not any(r.get("event") == "ready" for r in daemon.records())
