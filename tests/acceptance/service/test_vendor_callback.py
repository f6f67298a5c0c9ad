"""The vendor callback (``POST /v1/chanjing/callback/{token}``) in the real daemon, with the
simulator POSTing the detail envelope at completion as the vendor does: a fast path that
never trusts the body, never leaks its token, and stays within the budget in a flood."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest

from notifier.tools.receiver import Receiver
from tests.kit import DaemonProcess, ReceiverServer, Simulator, Workspace, wait_until
from tests.kit.callbacks import CALLBACK_TOKEN, INTAKE_TOKEN, PREFIX, _enable

pytestmark = pytest.mark.slow


def _events(rec: Receiver, job_id: str, path: str = "/ops") -> list[str]:
    return [r.payload["type"] for r in rec.accepted(path) if r.payload["data"]["id"] == job_id]


def _callbacks(daemon: DaemonProcess, job_id: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in daemon.records()
        if r.get("event") == "vendor callback" and (job_id is None or r.get("job_id") == job_id)
    ]


def _ready(ws: Workspace) -> DaemonProcess:
    daemon = ws.start()
    daemon.wait_ready()
    # The sweep that runs at start is over: the next one is 30 s away.
    return daemon


def test_a_callback_reports_the_job_long_before_polling_would(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, labels={"via": "callback"}, endpoints=["ops"])
    daemon = _ready(workspace)
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    # One job watched already (polled once at once, then not for 30 s), one never registered:
    # the callback alone brings it.
    simulator.sim.add_job("watchedjob1", queue_s=2.0, run_s=2.0, callback=hook)
    workspace.cli("watch", "add", "watchedjob1")
    assert wait_until(lambda: workspace.cli_json("watch", "list")[0]["polls"] >= 1, 15)
    simulator.sim.add_job("unregistered1", queue_s=0.5, run_s=1.0, outcome=30, callback=hook)

    def both(rec: Receiver) -> bool:
        return bool(_events(rec, "watchedjob1") and _events(rec, "unregistered1"))

    assert receiver.receiver.wait_for_blocking(both, timeout=20), receiver.receiver.summary()
    assert _events(receiver.receiver, "watchedjob1") == ["lip_sync.succeeded"]
    assert _events(receiver.receiver, "unregistered1") == ["lip_sync.failed"]
    (failed,) = [
        r for r in receiver.receiver.accepted("/ops") if r.payload["data"]["id"] == "unregistered1"
    ]
    assert failed.payload["data"]["labels"] == {"via": "callback"}  # intake.labels
    # Seen on the vendor's side within a few seconds of finishing, not 30 s later.
    jobs = simulator.sim.stats()["jobs"]
    for job_id in ("watchedjob1", "unregistered1"):
        job = jobs[job_id]
        assert job["callback_result"] == "http 202"
        assert job["first_terminal_seen_at"] - job["completed_at"] < 5, job
    assert {r["result"] for r in _callbacks(daemon)} <= {"polling", "in_flight", "verifying"}
    # Not watched yet: checked with one poll first, watched only because the vendor knows it.
    first = _callbacks(daemon, "unregistered1")[0]
    assert (first["new"], first["result"]) == (True, "verifying")
    # Only the path's template is logged; the token nowhere.
    requests = [r for r in daemon.records() if r.get("event") == "intake request"]
    assert ("POST", PREFIX + "{token}", 202) in {
        (r["method"], r["path"], r["status"]) for r in requests
    }
    assert CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0


def test_a_forged_success_makes_only_the_real_failure(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    daemon = _ready(workspace)
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    simulator.sim.add_job("failingjob1", queue_s=0.5, run_s=1.5, outcome=30, callback=hook)
    forged = {
        "code": 0,
        "msg": "success",
        "data": {"id": "failingjob1", "status": 20, "progress": 100, "video_url": "http://x/v"},
    }
    answer = httpx.post(hook, json=forged, timeout=10)
    assert answer.status_code == 202, answer.text
    # The forged claim only made a poll: the job was still running, so nothing was recorded.
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "vendor callback" and r.get("job_id") == "failingjob1",
        timeout=10,
    )
    assert receiver.receiver.wait_for_blocking(
        lambda rec: bool(_events(rec, "failingjob1")), timeout=20
    ), receiver.receiver.summary()
    assert _events(receiver.receiver, "failingjob1") == ["lip_sync.failed"]
    # The real callback came too; neither it nor the forged one made a second event.
    assert wait_until(lambda: len(_callbacks(daemon, "failingjob1")) == 2, 10)
    with httpx.Client(timeout=10) as client:
        again = client.post(hook, json=forged)
        assert again.status_code == 202
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "vendor callback" and r.get("result") == "finished",
        timeout=10,
    )
    assert not receiver.receiver.accepted("/analytics")  # it subscribes to successes only
    (row,) = workspace.cli_json("watch", "list", "--state", "failed")
    assert row["job_id"] == "failingjob1"
    assert daemon.stop() == 0
    assert _events(receiver.receiver, "failingjob1") == ["lip_sync.failed"]


def test_a_wrong_token_gets_the_404_of_an_unknown_path_and_changes_nothing(
    workspace: Workspace, simulator: Simulator
) -> None:
    url = _enable(workspace)
    daemon = _ready(workspace)
    simulator.sim.add_job("realjob01", queue_s=0, run_s=0)
    body = {"code": 0, "msg": "success", "data": {"id": "realjob01", "status": 20}}
    bearer = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        unknown = client.post("/v1/no-such-path", json=body, headers=bearer)
        wrong = [
            client.post(PREFIX + CALLBACK_TOKEN[:-1] + "x", json=body),
            client.post(PREFIX + "short", json=body),
            client.post(PREFIX + CALLBACK_TOKEN + "/more", json=body),
            client.get(PREFIX + "another-wrong-token-0123456"),
            client.post(PREFIX + "x" * 300, json=body, headers=bearer),
        ]
        for answer in wrong:
            assert (answer.status_code, answer.content) == (404, unknown.content)
            assert answer.headers["content-type"] == unknown.headers["content-type"]
        # A body without a usable id, with the right token: 400 naming it, nothing changed.
        hook = PREFIX + CALLBACK_TOKEN
        for bad, says in [
            ({"code": 0, "data": {}}, "no job id"),
            ({"code": 0, "data": {"id": 42}}, "data.id"),
            ({"code": 0, "data": {"id": "../etc"}}, "data.id"),
        ]:
            answer = client.post(hook, json=bad)
            assert answer.status_code == 400 and says in answer.json()["error"], answer.text
        json_body = {"content-type": "application/json"}
        assert client.post(hook, content=b"not json", headers=json_body).status_code == 400
        # Not JSON by its Content-Type: 415 naming it, before the body is read.
        form = client.post(hook, content=b"id=realjob01", headers={"content-type": "text/plain"})
        assert form.status_code == 415 and "Content-Type must be" in form.json()["error"]
        assert client.get(hook).status_code == 405
    assert workspace.cli_json("watch", "list") == []
    assert simulator.sim.stats()["jobs"]["realjob01"]["detail_calls"] == 0
    results = [r["result"] for r in _callbacks(daemon)]
    assert results.count("wrong_token") == 5 and results.count("bad_body") == 5
    assert CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0


def test_a_callback_for_an_id_the_vendor_does_not_know_makes_no_watch(
    workspace: Workspace, simulator: Simulator
) -> None:
    url = _enable(workspace)
    daemon = _ready(workspace)
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    answer = httpx.post(hook, json={"code": 0, "data": {"id": "nosuchjob1"}}, timeout=10)
    assert answer.status_code == 202
    # One poll checked it; the vendor's 40000 says forged or mistyped: nothing is watched.
    assert daemon.wait_for_log(
        lambda r: (
            r.get("event") == "vendor callbacks for jobs the vendor does not know; no watch made"
            and r.get("job_id") == "nosuchjob1"
        ),
        timeout=15,
    )
    assert workspace.cli_json("watch", "list") == []
    assert simulator.sim.stats()["codes"].get("40000") == 1
    # The daemon carries on: another callback is answered (and checked again).
    assert httpx.post(hook, json={"data": {"id": "nosuchjob1"}}, timeout=10).status_code == 202
    assert wait_until(lambda: simulator.sim.stats()["codes"].get("40000") == 2, 10)
    assert workspace.cli_json("watch", "list") == []
    assert daemon.stop() == 0


def test_a_callback_flood_stays_within_qps_and_ordinary_polling_goes_on(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    # Ordinary watches polled every 300 ms at most: they need a share of the budget too.
    workspace.config["polling"] = {
        "min_interval": "300ms",
        "max_interval": "1s",
        "give_up_after": "1h",
        "list_sweep": False,
    }
    workspace.write_config()
    daemon = _ready(workspace)
    flood_ids = [f"flood{n:03d}" for n in range(60)]
    for job_id in flood_ids:
        simulator.sim.add_job(job_id, queue_s=600, run_s=600)
    simulator.sim.add_job("ordinary1", queue_s=2, run_s=1)
    workspace.cli("watch", "add", "ordinary1")
    simulator.sim.reset_stats()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"

    async def flood() -> list[int]:
        # 300 at once through 100 connections: a traced daemon on busy cores may take longer
        # than any fixed wait for a free connection, so only the answers are timed.
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, pool=None)) as client:
            posts = [
                client.post(hook, json={"code": 0, "data": {"id": job_id, "status": 20}})
                for _round in range(5)
                for job_id in flood_ids
            ]
            return [r.status_code for r in await asyncio.gather(*posts)]

    started = time.monotonic()
    assert set(asyncio.run(flood())) == {202}
    took = time.monotonic() - started
    assert receiver.receiver.wait_for_blocking(
        lambda rec: bool(_events(rec, "ordinary1")), timeout=30
    ), receiver.receiver.summary()
    assert wait_until(lambda: len(_callbacks(daemon)) == 300, 10)
    results = [r["result"] for r in _callbacks(daemon)]
    # The fast lane holds half the budget (5 a second, a burst of 5): the flood's ids are
    # not watched yet, so each is checked there first; the rest wait their turn.
    checked = results.count("verifying")
    assert checked <= 5 + 5 * took + 1, (took, checked)
    assert "pending" in results
    stats = simulator.sim.stats()
    assert stats["max_per_second"] <= 10, stats["per_second"]
    assert "40001" not in stats["codes"]
    assert daemon.stop() == 0


def test_reload_follows_the_token_and_the_defaults(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    daemon = _ready(workspace)
    new_token = "cb-new-1a2b3c4d5e6f7a8b9c0d"
    port = url.rsplit(":", 1)[1]
    workspace.config["intake"].update(
        listen=f"127.0.0.1:{port}",
        callback_token=new_token,
        labels={"via": "reloaded"},
        endpoints=["analytics"],
    )
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    simulator.sim.add_job("reloadjob1", queue_s=0, run_s=0)
    body = {"code": 0, "data": {"id": "reloadjob1"}}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post(PREFIX + CALLBACK_TOKEN, json=body).status_code == 404
        assert client.post(PREFIX + new_token, json=body).status_code == 202

    def analytics(rec: Receiver) -> bool:
        return bool(_events(rec, "reloadjob1", "/analytics"))

    assert receiver.receiver.wait_for_blocking(analytics, timeout=20)
    (delivered,) = receiver.receiver.accepted("/analytics")
    assert delivered.payload["data"]["labels"] == {"via": "reloaded"}
    assert not _events(receiver.receiver, "reloadjob1")  # not to ops: intake.endpoints
    assert new_token not in daemon.output and CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0
