"""Issue 18, item 10, replayed (scaled down): a flood of callbacks with random ids (the callback
token is semi-public) against the real daemon and simulator. Before, every id became a watch
and the vendor's 40000s took the budget (a real job was reported after 52 s). Now an id not
watched yet costs one fast-lane poll, within the share, and becomes a watch only if the
vendor knows it; a real job's one callback is never lost, even over the share."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from notifier.polling.fastpath import FAST_SHARE
from notifier.tools.receiver import Receiver
from tests.kit import DaemonProcess, ReceiverServer, Simulator, Workspace, wait_until
from tests.kit.callbacks import CALLBACK_TOKEN, PREFIX, _enable

pytestmark = pytest.mark.slow

QPS = 10  # the test config's chanjing.qps
SHARE = QPS * FAST_SHARE  # fast-lane calls a second (and its burst)


def _events(rec: Receiver, job_id: str) -> list[str]:
    return [r.payload["type"] for r in rec.accepted("/ops") if r.payload["data"]["id"] == job_id]


def _forge(hook: str, ids: list[str]) -> list[int]:
    async def flood() -> list[int]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, pool=None)) as client:
            posts = [
                client.post(hook, json={"code": 0, "data": {"id": job_id, "status": 20}})
                for job_id in ids
            ]
            return [r.status_code for r in await asyncio.gather(*posts)]

    return asyncio.run(flood())


def _callback(hook: str, simulator: Simulator, job_id: str) -> None:
    """The vendor's one callback for a finished job: its detail envelope."""
    (detail,) = [j for j in simulator.sim.jobs() if j["id"] == job_id]
    body = {"code": 0, "msg": "success", "data": {"id": job_id, "status": detail["status"]}}
    assert httpx.post(hook, json=body, timeout=10).status_code == 202


def _rejected(simulator: Simulator) -> int:
    return int(simulator.sim.stats()["codes"].get("40000", 0))


def _unknown_lines(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [
        r
        for r in daemon.records()
        if r.get("event") == "vendor callbacks for jobs the vendor does not know; no watch made"
    ]


def test_a_flood_of_forged_callbacks_makes_no_watch_and_the_real_job_comes_at_once(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    simulator.sim.add_job("realjob0001", queue_s=0, run_s=0)  # finished, not watched
    simulator.sim.reset_stats()
    forged = [f"forged{secrets.token_hex(6)}" for _ in range(200)]
    started = time.monotonic()
    assert set(_forge(hook, forged)) == {202}  # answered at once, never after the poll
    # The real job's callback comes after the flood: it is verified next, not 40 s later.
    sent = time.monotonic()
    _callback(hook, simulator, "realjob0001")
    assert receiver.receiver.wait_for_blocking(
        lambda rec: bool(_events(rec, "realjob0001")), timeout=20
    ), receiver.receiver.summary()
    detected = time.monotonic() - sent
    assert detected < 5, detected
    assert _events(receiver.receiver, "realjob0001") == ["lip_sync.succeeded"]
    # The forged ids cost at most the fast share: a burst of 5 and 5 a second after it.
    for _ in range(6):
        took = time.monotonic() - started
        rejected = _rejected(simulator)
        assert rejected <= SHARE + SHARE * took + 1, (rejected, took)
        time.sleep(0.5)
    assert _rejected(simulator) >= SHARE  # they are checked, in the lane's turn
    watched = [row["job_id"] for row in workspace.cli_json("watch", "list")]
    assert watched == ["realjob0001"]  # no watch for a forged id
    stats = simulator.sim.stats()
    assert stats["max_per_second"] <= QPS, stats["per_second"]
    # A line per ten seconds about them at most, not one per forged callback.
    assert 1 <= len(_unknown_lines(daemon)) <= 2
    results = [r["result"] for r in daemon.records() if r.get("event") == "vendor callback"]
    assert results.count("verifying") <= SHARE + SHARE * (sent - started) + 2
    assert results.count("pending") >= len(forged) - results.count("verifying")
    assert daemon.stop() == 0


def test_a_real_callback_over_the_share_waits_and_becomes_a_watch(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, labels={"via": "callback"})
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    simulator.sim.add_job("realjob0002", queue_s=600, run_s=600)  # still queued
    before = [f"forged{secrets.token_hex(6)}" for _ in range(20)]
    after = [f"forged{secrets.token_hex(6)}" for _ in range(30)]
    assert set(_forge(hook, before)) == {202}  # the share is spent
    _callback(hook, simulator, "realjob0002")
    assert set(_forge(hook, after)) == {202}  # newer ones go first
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "vendor callback" and r.get("job_id") == "realjob0002",
        timeout=10,
    )
    (first,) = [
        r
        for r in daemon.records()
        if r.get("event") == "vendor callback" and r.get("job_id") == "realjob0002"
    ]
    assert first["result"] == "pending"

    def watched() -> list[dict[str, Any]]:
        return list(workspace.cli_json("watch", "list"))

    assert wait_until(lambda: bool(watched()), 30)
    (row,) = watched()
    # Watched with the callback's labels, its first poll recorded (the job is queued).
    assert (row["job_id"], row["state"], row["labels"]) == (
        "realjob0002",
        "active",
        {"via": "callback"},
    )
    assert row["polls"] >= 1 and row["status"] == 0, row
    assert not _events(receiver.receiver, "realjob0002")
    assert daemon.stop() == 0
