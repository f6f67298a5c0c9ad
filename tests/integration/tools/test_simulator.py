"""The vendor simulator over real HTTP on 127.0.0.1, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from notifier.service.http_server import ServerThread
from notifier.tools.sim_jobs import status_at
from tests.kit import T0
from tests.kit.vendor import Vendor


def assert_envelope(answer: dict[str, Any]) -> None:
    assert set(answer) == {"trace_id", "code", "msg", "data"}
    assert isinstance(answer["trace_id"], str) and answer["trace_id"]


# --------------------------------------------------------------------------- tokens


def test_token_issue_and_reissue_revokes_previous(vendor: Vendor) -> None:
    job = vendor.sim.add_job()
    first = vendor.new_token()
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert vendor.detail(job, first)["code"] == 0

    second = vendor.new_token()
    assert second != first
    stale = vendor.detail(job, first)
    assert_envelope(stale)
    assert stale["code"] == 10400
    assert "invalid or expired" in stale["msg"]
    assert vendor.detail(job, second)["code"] == 0
    assert vendor.sim.stats()["tokens_issued"] == 2


def test_token_expiry_is_a_unix_timestamp_about_24h_ahead(vendor: Vendor) -> None:
    answer = vendor.token()
    assert_envelope(answer)
    expire_in = answer["data"]["expire_in"]
    assert isinstance(expire_in, int)
    assert expire_in == int(T0 + 86400)

    job = vendor.sim.add_job()
    token = answer["data"]["access_token"]
    vendor.clock.advance(86400 - 1)
    assert vendor.detail(job, token)["code"] == 0
    vendor.clock.advance(1)
    assert vendor.detail(job, token)["code"] == 10400


def test_wrong_credentials_are_a_parameter_error(vendor: Vendor) -> None:
    bad_secret = vendor.token(secret_key="nope")
    assert bad_secret["code"] == 40000
    assert "secret_key" in bad_secret["msg"]
    bad_app = vendor.token(app_id="other-app")
    assert bad_app["code"] == 40000
    assert "app_id" in bad_app["msg"]
    assert vendor.sim.stats()["tokens_issued"] == 0


def test_missing_or_revoked_token_is_10400(vendor: Vendor) -> None:
    job = vendor.sim.add_job()
    assert vendor.detail(job, None)["code"] == 10400
    assert vendor.detail(job, "f" * 32)["code"] == 10400
    token = vendor.new_token()
    assert vendor.detail(job, token)["code"] == 0
    vendor.sim.revoke_token()
    assert vendor.detail(job, token)["code"] == 10400
    assert vendor.post("/open/v1/video_lip_sync/list", {}, token)["code"] == 10400


# --------------------------------------------------------------------------- detail timeline


def test_detail_follows_the_job_timeline(vendor: Vendor) -> None:
    job = vendor.sim.add_job(queue_s=2, run_s=10)
    token = vendor.new_token()

    queued = vendor.detail(job, token)
    assert_envelope(queued)
    assert queued["code"] == 0
    data = queued["data"]
    assert set(data) == {
        "id",
        "status",
        "progress",
        "msg",
        "video_url",
        "preview_url",
        "duration",
        "create_time",
    }
    assert (data["id"], data["status"], data["progress"]) == (job, 0, 0)
    assert data["create_time"] == int(T0)

    vendor.clock.advance(2)  # run starts
    started = vendor.detail(job, token)["data"]
    assert (started["status"], started["progress"]) == (10, 1)
    assert vendor.detail(job, token)["data"]["progress"] == 1
    vendor.clock.advance(5)  # half-way: 1 + 98 * 0.5
    half = vendor.detail(job, token)["data"]
    assert (half["status"], half["progress"], half["video_url"]) == (10, 50, "")

    vendor.clock.advance(4.9)
    assert vendor.detail(job, token)["data"]["status"] == 10
    assert vendor.sim.stats()["jobs"][job]["first_terminal_seen_at"] is None

    vendor.clock.advance(0.1)  # exactly created_at + queue_s + run_s
    done = vendor.detail(job, token)["data"]
    assert done["status"] == 20
    assert done["progress"] == 100
    assert done["msg"] == "success"
    assert done["video_url"] == f"https://cdn.example.invalid/videos/{job}.mp4"
    assert done["preview_url"] == f"https://cdn.example.invalid/videos/{job}.jpg"
    assert isinstance(done["duration"], int) and done["duration"] > 0

    vendor.clock.advance(30)
    assert vendor.detail(job, token)["data"]["status"] == 20
    record = vendor.sim.stats()["jobs"][job]
    assert record["status_now"] == 20
    assert record["created_at"] == T0
    assert record["completed_at"] == T0 + 12
    assert record["first_terminal_seen_at"] == pytest.approx(T0 + 12)
    assert record["detail_calls"] == 7


def test_failed_job_reports_its_reason(vendor: Vendor) -> None:
    job = vendor.sim.add_job(queue_s=0, run_s=1, outcome=30, msg="insufficient balance")
    token = vendor.new_token()
    vendor.clock.advance(1)
    data = vendor.detail(job, token)["data"]
    assert data["status"] == 30
    assert data["msg"] == "insufficient balance"
    assert data["video_url"] == "" and data["preview_url"] == ""


def test_unknown_or_missing_id_is_40000(vendor: Vendor) -> None:
    token = vendor.new_token()
    unknown = vendor.detail("0" * 32, token)
    assert_envelope(unknown)
    assert unknown["code"] == 40000
    assert "not found" in unknown["msg"]
    assert unknown["data"] is None
    assert vendor.detail(None, token)["code"] == 40000


def test_progress_points_are_piecewise_linear(vendor: Vendor) -> None:
    points = [(0.0, 0.0), (0.5, 10.0), (0.6, 80.0), (1.0, 99.0)]
    job = vendor.sim.add_job(queue_s=0, run_s=100, progress_points=points)
    token = vendor.new_token()
    seen = []
    for at in (0, 25, 50, 55, 60, 70, 99):
        vendor.clock.now = T0 + at
        data = vendor.detail(job, token)["data"]
        assert data["status"] == 10
        seen.append(data["progress"])
    assert seen == [0, 5, 10, 45, 80, 85, 99]
    vendor.clock.now = T0 + 100
    assert vendor.detail(job, token)["data"]["progress"] == 100


def test_status_at_is_a_pure_timeline() -> None:
    assert status_at(0.5, 1, 4, 20) == (0, 0)
    assert status_at(1.0, 1, 4, 20) == (10, 1)
    assert status_at(5.0, 1, 4, 20) == (20, 100)
    assert status_at(5.0, 1, 4, 30) == (30, 0)
    assert status_at(0.0, 0, 0, 20) == (20, 100)  # no queue, no run: terminal at once


# --------------------------------------------------------------------------- QPS


def test_qps_limit_per_calendar_second_of_the_sim_clock(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = vendor_factory(qps=3)
    job = vendor.sim.add_job()
    second = int(T0)
    assert vendor.token()["code"] == 0  # arrival 1: token calls count too
    assert vendor.detail(job, None)["code"] == 10400  # arrival 2
    token = vendor.new_token()  # arrival 3
    over = vendor.detail(job, token)  # arrival 4 > qps
    assert_envelope(over)
    assert over["code"] == 40001
    assert "frequent" in over["msg"]
    vendor.clock.now = second + 0.999
    assert vendor.detail(job, token)["code"] == 40001  # still the same calendar second
    vendor.clock.now = second + 1.0
    assert vendor.detail(job, token)["code"] == 0

    stats = vendor.sim.stats()
    assert stats["calls"] == 6
    assert stats["per_second"] == {str(second): 5, str(second + 1): 1}
    assert stats["max_per_second"] == 5
    assert stats["codes"] == {"0": 3, "10400": 1, "40001": 2}
    assert stats["by_path"] == {
        "/open/v1/access_token": 2,
        "/open/v1/video_lip_sync/detail": 4,
    }


def test_admin_calls_are_neither_limited_nor_counted(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = vendor_factory(qps=1)
    for _ in range(3):
        assert vendor.http.get("/_sim/stats").status_code == 200
    added = vendor.http.post(
        "/_sim/jobs", json=[{"id": "job-a", "queue_s": 0, "run_s": 1}, {"outcome": 30}]
    )
    assert added.status_code == 200
    ids = added.json()["ids"]
    assert ids[0] == "job-a" and re.fullmatch(r"[0-9a-f]{32}", ids[1])
    listed = vendor.http.get("/_sim/jobs").json()["jobs"]
    assert {j["id"] for j in listed} == set(ids)
    assert vendor.http.post("/_sim/jobs", json={"bogus": 1}).status_code == 400
    assert vendor.sim.stats()["calls"] == 0

    token = vendor.new_token()
    assert vendor.http.post("/_sim/revoke_token").status_code == 200
    vendor.clock.advance(1)
    assert vendor.detail("job-a", token)["code"] == 10400
    assert vendor.sim.stats()["calls"] == 2
    assert vendor.http.post("/_sim/reset_stats").status_code == 200
    stats = vendor.http.get("/_sim/stats").json()
    assert (stats["calls"], stats["per_second"], stats["codes"]) == (0, {}, {})


# --------------------------------------------------------------------------- faults


def test_fault_50000_applies_to_detail_not_token(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = vendor_factory(fault_50000=1.0, seed=1)
    job = vendor.sim.add_job()
    token = vendor.new_token()
    answer = vendor.detail(job, token)
    assert_envelope(answer)
    assert answer["code"] == 50000
    assert vendor.post("/open/v1/video_lip_sync/list", {}, token)["code"] == 50000
    vendor.sim.set_faults(fault_50000=0.0, fault_51000=1.0)
    assert vendor.detail(job, token)["code"] == 51000


def test_fault_html_is_a_502_with_an_html_body(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = vendor_factory(fault_html=1.0)
    job = vendor.sim.add_job()
    token = vendor.new_token()
    resp = vendor.http.get(
        "/open/v1/video_lip_sync/detail", params={"id": job}, headers={"access_token": token}
    )
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("text/html")
    assert "Bad Gateway" in resp.text and resp.text.lstrip().startswith("<html>")
    assert vendor.sim.stats()["http_errors"] == 1

    assert vendor.http.post("/_sim/faults", json={"fault_html": 0}).status_code == 200
    assert vendor.detail(job, token)["code"] == 0
    assert vendor.http.post("/_sim/faults", json={"fault_html": 2}).status_code == 400


def test_seeded_faults_are_reproducible(vendor_factory: Callable[..., Vendor]) -> None:
    runs = []
    for _ in range(2):
        vendor = vendor_factory(fault_50000=0.5, seed=42, qps=0)
        job = vendor.sim.add_job()
        token = vendor.new_token()
        runs.append([vendor.detail(job, token)["code"] for _ in range(30)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {0, 50000}


def test_slow_fault_delays_the_answer(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = vendor_factory(slow_rate=1.0, slow_seconds=0.2)
    job = vendor.sim.add_job()
    token = vendor.new_token()
    started = time.monotonic()
    assert vendor.detail(job, token)["code"] == 0
    assert time.monotonic() - started >= 0.2  # a lower bound only: a slow machine passes too


# --------------------------------------------------------------------------- list and create


def test_list_is_paginated_newest_first(vendor: Vendor) -> None:
    ids = []
    for n in range(5):
        ids.append(vendor.sim.add_job(f"job-{n}"))
        vendor.clock.advance(1)
    token = vendor.new_token()

    first = vendor.post("/open/v1/video_lip_sync/list", {"page": 1, "page_size": 2}, token)
    assert_envelope(first)
    assert first["code"] == 0
    assert [d["id"] for d in first["data"]["list"]] == ["job-4", "job-3"]
    assert first["data"]["page_info"] == {"page": 1, "size": 2, "total_count": 5, "total_page": 3}
    assert set(first["data"]["list"][0]) >= {"status", "progress", "create_time", "video_url"}

    last = vendor.post("/open/v1/video_lip_sync/list", {"page": 3, "page_size": 2}, token)
    assert [d["id"] for d in last["data"]["list"]] == ["job-0"]
    beyond = vendor.post("/open/v1/video_lip_sync/list", {"page": 4, "page_size": 2}, token)
    assert beyond["data"]["list"] == []
    bad = vendor.post("/open/v1/video_lip_sync/list", {"page": 0}, token)
    assert bad["code"] == 40000


def test_create_with_sim_hints(vendor: Vendor) -> None:
    token = vendor.new_token()
    body = {
        "video_url": "https://example.invalid/face.mp4",
        "audio_url": "https://example.invalid/voice.wav",
        "_sim": {"queue_s": 1, "run_s": 2, "outcome": 30, "msg": "insufficient balance"},
    }
    created = vendor.post("/open/v1/video_lip_sync/create", body, token)
    assert_envelope(created)
    assert created["code"] == 0
    job = created["data"]
    assert isinstance(job, str) and re.fullmatch(r"[0-9a-f]{32}", job)

    assert vendor.detail(job, token)["data"]["status"] == 0
    vendor.clock.advance(1)
    assert vendor.detail(job, token)["data"]["status"] == 10
    vendor.clock.advance(2)
    data = vendor.detail(job, token)["data"]
    assert (data["status"], data["msg"]) == (30, "insufficient balance")

    plain = vendor.post("/open/v1/video_lip_sync/create", {}, token)
    assert plain["code"] == 0
    record = vendor.sim.stats()["jobs"][plain["data"]]
    assert record["completed_at"] - record["created_at"] == 13  # default queue 3 s + run 10 s

    not_object = vendor.post("/open/v1/video_lip_sync/create", [1, 2], token)
    assert not_object["code"] == 40000
    bad_hint = vendor.post("/open/v1/video_lip_sync/create", {"_sim": {"outcome": 25}}, token)
    assert bad_hint["code"] == 40000
    assert vendor.post("/open/v1/video_lip_sync/create", {}, None)["code"] == 10400


def test_create_with_callback_posts_the_detail_envelope_once(vendor: Vendor) -> None:
    received: list[dict[str, Any]] = []
    headers: list[dict[str, str]] = []
    arrived = threading.Event()

    def receiver_app() -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            received.append(await request.json())
            headers.append(dict(request.headers))
            arrived.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app

    with ServerThread(receiver_app) as receiver:
        token = vendor.new_token()
        body = {"callback": f"{receiver.url}/hook", "_sim": {"queue_s": 1, "run_s": 2}}
        job = vendor.post("/open/v1/video_lip_sync/create", body, token)["data"]

        # Not terminal yet on the sim clock: nothing is due, however often the ticker runs.
        assert vendor.server.call(vendor.sim.fire_due_callbacks()) == []
        vendor.clock.advance(3)
        assert arrived.wait(10), "callback never arrived"
        # Already sent: a further tick dispatches nothing.
        assert vendor.server.call(vendor.sim.fire_due_callbacks()) == []

    assert len(received) == 1
    envelope = received[0]
    assert_envelope(envelope)
    assert (envelope["code"], envelope["msg"]) == (0, "success")
    assert envelope["data"]["id"] == job
    assert envelope["data"]["status"] == 20
    assert envelope["data"]["video_url"].endswith(f"/{job}.mp4")
    assert not any(k.lower().startswith("webhook-") for k in headers[0])  # unsigned
    assert vendor.sim.stats()["jobs"][job]["callback_sent_at"] == T0 + 3


def test_unknown_paths_are_real_404s(vendor: Vendor) -> None:
    assert vendor.http.get("/open/v1/video_lip_sync/nope").status_code == 404
    assert vendor.http.post("/open/v2/access_token", json={}).status_code == 404
    assert vendor.http.get("/").status_code == 404


# --------------------------------------------------------------------------- CLI entry point


def test_run_simulator_prints_its_address_and_stops_on_sigint() -> None:
    code = (
        "from notifier.tools.simulator import SimConfig, run_simulator\n"
        "run_simulator('127.0.0.1', 0, SimConfig(secret_key='s3cret-value', qps=7),"
        " [{'id': 'job-1', 'queue_s': 0, 'run_s': 0}])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        # Scripted jobs are announced first, one line each, then the address.
        assert proc.stdout.readline() == "job job-1\n"
        line = proc.stdout.readline()
        match = re.fullmatch(
            r"simulator listening on (http://127\.0\.0\.1:\d+) \(app_id=demo-app, qps=7\)\n", line
        )
        assert match, line
        assert "s3cret-value" not in line
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            creds = {"app_id": "demo-app", "secret_key": "s3cret-value"}
            token = http.post("/open/v1/access_token", json=creds).json()["data"]["access_token"]
            detail = http.get(
                "/open/v1/video_lip_sync/detail",
                params={"id": "job-1"},
                headers={"access_token": token},
            ).json()
            assert detail["data"]["status"] == 20
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stats_are_json_serialisable(vendor: Vendor) -> None:
    vendor.sim.add_job()
    vendor.new_token()
    assert json.loads(json.dumps(vendor.sim.stats()))["calls"] == 1
