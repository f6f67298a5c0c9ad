"""Issue 19, item 5: the vendor calls back once and never retries, so a callback for a new
job that arrives while the state cannot be written must not be answered 503 and forgotten.
Replayed with the real daemon: callbacks while PostgreSQL is down (stopped, then started on
the same port), and on SQLite while another program holds the write lock."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from tests.kit import DaemonProcess, PgServer, ReceiverServer, Simulator, Workspace
from tests.kit.callbacks import CALLBACK_TOKEN, PREFIX, _enable

pytestmark = pytest.mark.slow

JOBS = 10


def _reported(receiver: ReceiverServer) -> set[str]:
    return {r.payload["data"]["id"] for r in receiver.receiver.accepted("/ops")}


def _post(hook: str, job_id: str) -> int:
    body = {"code": 0, "msg": "success", "data": {"id": job_id, "status": 20}}
    return httpx.post(hook, json=body, timeout=10).status_code


def _held(daemon: DaemonProcess, job_id: str) -> Any:
    return lambda r: (
        r.get("event", "").startswith("vendor callback kept in memory")
        and r.get("job_id") == job_id
    )


def test_callbacks_for_new_jobs_while_postgresql_is_down_are_all_reported(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_server: PgServer,
    pg_url: str,
) -> None:
    if not pg_server.restartable:
        pytest.skip("CHANJING_NOTIFIER_TEST_PG names a server this test may not stop")
    workspace.config["state"] = {"url": pg_url, "node": "only", "lease": "3s"}
    url = _enable(workspace)
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    jobs = [simulator.sim.add_job(f"pgdown{i:02d}", queue_s=0, run_s=0) for i in range(JOBS)]
    with pg_server.stopped():
        answers = [_post(hook, job) for job in jobs]
        # Every one was answered 202 and kept, named in the log.
        assert answers == [202] * JOBS, answers
        for job in jobs:
            assert daemon.wait_for_log(_held(daemon, job), timeout=10), daemon.output
    # Back: every job is verified, watched and reported (before: 503 and never reported).
    assert receiver.receiver.wait_for_blocking(
        lambda rec: _reported(receiver) >= set(jobs), timeout=60
    ), (receiver.receiver.summary(), daemon.output[-4000:])
    assert sorted(_reported(receiver)) == sorted(jobs)
    assert CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0


def test_a_callback_whose_watch_cannot_be_written_for_a_lock_is_reported_later(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}"
    job = simulator.sim.add_job("lockedjob1", queue_s=0, run_s=0)
    other = sqlite3.connect(workspace.state_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        assert _post(hook, job) == 202
        # Verified by a poll, then its watch could not be written: kept, not dropped.
        assert daemon.wait_for_log(_held(daemon, job), timeout=15), daemon.output
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert receiver.receiver.wait_for_blocking(
        lambda rec: job in _reported(receiver), timeout=30
    ), (receiver.receiver.summary(), daemon.output[-4000:])
    assert daemon.stop() == 0
