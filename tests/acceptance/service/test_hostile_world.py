"""Issue 18, done when: a daemon fed every poison value at once, with a receiver answering a
gzip bomb and ``Retry-After: 0``, a callback flood and 1,000 idle connections, keeps
detecting an ordinary job within its usual latency, stays under 200 MB and logs at most
about a line a second about it."""

from __future__ import annotations

import gzip
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from notifier.service.http_server import ServerThread
from tests.kit import ReceiverServer, Simulator, Workspace, free_port

pytestmark = [pytest.mark.slow, pytest.mark.realtime]

INTAKE_TOKEN = "intake-h-5b0f2d7c9e1a3b4c"
CALLBACK_TOKEN = "cb-h-7d1e0c9b8a6f5e4d3c2b1a"
#: A gzip-in-gzip body of 128 MiB of zeros: a few hundred bytes on the wire.
BOMB = gzip.compress(gzip.compress(b"\0" * (128 * 1024 * 1024), 9), 9)
DEEP = "[" * 100_000 + "]" * 100_000
MEMORY_LIMIT_KB = 200 * 1024


@pytest.fixture
def bomber() -> Iterator[str]:
    """A receiver that answers every POST 503, ``Retry-After: 0``, with a decompression bomb."""

    async def answer(_request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip, gzip", "Retry-After": "0"}
        return web.Response(status=503, body=BOMB, headers=headers)

    def app() -> web.Application:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", answer)
        return application

    with ServerThread(app) as server:
        yield server.url


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_hostile_world_does_not_stop_detection(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer, bomber: str
) -> None:
    intake, metrics = free_port(), free_port()
    workspace.env.update(INTAKE_TOKEN=INTAKE_TOKEN, CALLBACK_TOKEN=CALLBACK_TOKEN)
    workspace.config["intake"] = {
        "listen": f"127.0.0.1:{intake}",
        "tokens": ["${INTAKE_TOKEN}"],
        "callback_token": "${CALLBACK_TOKEN}",
    }
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    workspace.config["endpoints"].append(
        {"name": "bombed", "type": "webhook", "url": f"{bomber}/hook", "secret": "${OPS_SECRET}"}
    )
    workspace.write_config()
    # Poison from the vendor's side: a message with a lone surrogate.
    poisoned = simulator.sim.add_job(queue_s=0, run_s=0.5, outcome=30, msg="bad \ud800 audio")
    daemon = workspace.start()
    daemon.wait_ready()
    started = time.monotonic()
    url = f"http://127.0.0.1:{intake}"
    auth = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    idle: list[socket.socket] = []
    headers = {**auth, "Content-Type": "application/json"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            refused = [
                client.post("/v1/watches", content=b'{"ids": ["p1"], "labels": {"k": "\\ud800"}}'),
                client.post("/v1/watches", json={"ids": ["probe-nl\n"]}),
                client.post(
                    "/v1/watches", content=b'{"ids": ["p2"], "labels": ' + DEEP.encode() + b"}"
                ),
                client.get("/v1/events", params={"limit": "²"}),
                client.get("/v1/events", params={"limit": "9" * 5000}),
            ]
            assert [r.status_code for r in refused] == [400] * 5
            grown = [
                client.post("/v1/watches", json={"ids": ["grow"], "labels": {f"k{i}": "x" * 500}})
                for i in range(20)
            ]
            assert 409 in {r.status_code for r in grown}  # merged labels past their limits
            assert client.post("/v1/watches", json={"ids": [poisoned]}).status_code == 202
            # A callback flood of ids nobody created.
            for _ in range(200):
                client.post(
                    f"/v1/chanjing/callback/{CALLBACK_TOKEN}",
                    json={"code": 0, "data": {"id": secrets.token_hex(16), "status": 20}},
                )
        assert _raw(intake, b"GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")[
            9:12
        ] == (b"400")
        with sqlite3.connect(workspace.state_path) as db:  # a queue row nested 100k deep
            db.execute("INSERT INTO watch_queue (job_id, labels) VALUES (?, ?)", ("q-deep", DEEP))
        # 1,000 idle connections: to the metrics port and the intake.
        for port in (metrics, intake):
            for _ in range(500):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))

        # Through all of that, an ordinary job.
        ordinary = simulator.sim.add_job(queue_s=0.2, run_s=1.0)
        workspace.cli("watch", "add", ordinary)
        rec = receiver.receiver
        assert rec.wait_for_blocking(
            lambda r: any(x.payload["data"]["id"] == ordinary for x in r.accepted("/ops")), 60
        ), rec.summary()
        done = simulator.sim.stats()["jobs"][ordinary]["completed_at"]
        (hook,) = [x for x in rec.accepted("/ops") if x.payload["data"]["id"] == ordinary]
        detection = hook.received_at - done
        # The vendor's poisoned job made its event too, and it was delivered.
        assert rec.wait_for_blocking(
            lambda r: any(x.payload["data"]["id"] == poisoned for x in r.accepted("/ops")), 30
        )
    finally:
        for sock in idle:
            sock.close()
    lasted = time.monotonic() - started
    peak = _peak_kb(daemon.popen.pid)
    assert daemon.stop() == 0
    assert detection < 5.0, detection  # usually about a second at these polling settings
    assert peak < MEMORY_LIMIT_KB, f"{peak} kB"
    complaints = [r for r in daemon.records() if r.get("level") in ("warning", "error")]
    assert len(complaints) <= lasted + 20, [c.get("event") for c in complaints]
    assert "Traceback" not in daemon.output
    watched = {w["job_id"] for w in workspace.cli_json("watch", "list")}
    assert len(watched) <= 10, sorted(watched)  # no watch for the forged callbacks' ids
