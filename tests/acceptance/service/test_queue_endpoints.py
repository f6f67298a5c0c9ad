"""Queue rows that name endpoints, as another program would INSERT them, through the daemon."""

from __future__ import annotations

import sqlite3

import pytest

from notifier.store import Store
from tests.kit import ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def test_queue_rows_with_bad_or_unknown_endpoints_are_rejected_and_good_ones_routed(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    job = simulator.sim.add_job("qendpoints1", queue_s=0.1, run_s=0.2, outcome=20)
    Store(workspace.state_path).close()  # the state file with its schema, as the daemon makes it
    rows = [
        (job, '["analytics"]'),  # only analytics, although ops takes every event
        ("qbadjson01", "not json"),
        ("qnotarray1", '{"ops": true}'),
        ("qunknown01", '["ops", "nosuch"]'),
    ]
    with sqlite3.connect(workspace.state_path) as db:
        db.executemany("INSERT INTO watch_queue (job_id, endpoints) VALUES (?, ?)", rows)
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/analytics")) == 1, timeout=30), (
        daemon.output
    )
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "delivered" and r.get("endpoint") == "analytics", timeout=10
    )
    assert daemon.stop() == 0

    assert rec.accepted("/analytics")[0].payload["data"]["id"] == job
    deliveries = workspace.cli_json("deliveries", "list")
    assert [(d["job_id"], d["endpoint"], d["state"]) for d in deliveries] == [
        (job, "analytics", "delivered")
    ]
    assert rec.all("/ops") == []
    with sqlite3.connect(workspace.state_path) as db:
        rejected = dict(
            db.execute(
                "SELECT job_id, rejected FROM watch_queue WHERE rejected IS NOT NULL ORDER BY seq"
            ).fetchall()
        )
    assert list(rejected) == ["qbadjson01", "qnotarray1", "qunknown01"]
    assert "endpoints is not valid JSON" in rejected["qbadjson01"]
    assert "endpoints: must be a list of endpoint names, got mapping" in rejected["qnotarray1"]
    assert "endpoints[1]: unknown endpoint 'nosuch' (configured: " in rejected["qunknown01"]
    assert all(name in rejected["qunknown01"] for name in ("analytics", "ops", "team"))
    assert {w["job_id"] for w in workspace.cli_json("watch", "list")} == {job}
    logged = [r for r in daemon.records() if r.get("event", "").startswith("queue row rejected")]
    assert len(logged) == 3
