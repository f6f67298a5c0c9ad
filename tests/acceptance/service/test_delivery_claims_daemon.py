"""The real daemon claims each delivery under its node name before sending it: visible in
`deliveries list --json` while the attempt runs, counted in /metrics, released by the result."""

from __future__ import annotations

import socket
import sqlite3

import httpx
import pytest

from tests.kit import ReceiverServer, Simulator, Workspace, free_port

pytestmark = pytest.mark.slow


def test_the_daemon_claims_under_its_node_name_and_counts_claims(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    port = free_port()
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["delivery"]["timeout"] = "120s"
    workspace.write_config()
    rec = receiver.receiver
    # The POST waits until the test has looked at the claim (set_delay 0 answers it).
    rec.set_delay("/ops", 110.0)
    daemon = workspace.start()
    daemon.wait_ready()
    job = simulator.sim.add_job("claims01", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(job)
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) == 1, timeout=30)

    rows = {r["endpoint"]: r for r in workspace.cli_json("deliveries", "list")}
    assert rows["ops"]["claimed_by"] == f"{socket.gethostname()}:{daemon.popen.pid}"
    plain = workspace.cli("deliveries", "list").stdout
    assert "claimed" not in plain.lower()  # the table is unchanged

    rec.set_delay("/ops", 0)
    for endpoint in ("ops", "analytics"):
        assert daemon.wait_for_log(
            lambda r, e=endpoint: r.get("event") == "delivered" and r.get("endpoint") == e, 15
        )
    rows = {r["endpoint"]: r for r in workspace.cli_json("deliveries", "list")}
    assert {r["state"] for r in rows.values()} == {"delivered"}
    assert {r["claimed_by"] for r in rows.values()} == {None}  # the result released it
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'chanjing_delivery_claims_total{endpoint="ops"} 1.0' in text
    assert 'chanjing_delivery_claims_total{endpoint="analytics"} 1.0' in text
    assert "# TYPE chanjing_delivery_results_superseded_total counter" in text
    assert "# TYPE chanjing_delivery_claims_expired_total counter" in text
    assert daemon.stop() == 0


def test_a_killed_daemons_claims_are_released_by_the_next_daemon_at_start(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    """kill -9 during an attempt: the delivery stays claimed by a dead node. On SQLite the
    next daemon holds the file's instance lock, so no other daemon can own a claim in it:
    it releases them at start and sends again at once, long before the claim would lapse
    (a shared PostgreSQL state waits claims out: test_ha_pair.py). Deliveries that were not
    in flight are not sent again."""
    workspace.config["delivery"]["timeout"] = "120s"  # a claim lasts over two minutes
    workspace.write_config()
    rec = receiver.receiver
    rec.set_delay("/ops", 110.0)  # the attempt is in flight when the daemon is killed
    first = workspace.start()
    first.wait_ready()
    job = simulator.sim.add_job("claims02", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(job)
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) == 1, timeout=30)
    assert first.wait_for_log(
        lambda r: r.get("event") == "delivered" and r.get("endpoint") == "analytics", timeout=30
    )
    first.kill9()
    with sqlite3.connect(workspace.state_path) as db:
        ((claimed_by, lapses_at),) = db.execute(
            "SELECT claimed_by, claim_expires FROM deliveries WHERE endpoint = 'ops'"
        ).fetchall()
    assert claimed_by == f"{socket.gethostname()}:{first.popen.pid}"

    rec.set_delay("/ops", 0)
    second = workspace.start()
    second.wait_ready()
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) == 2, timeout=30)
    resent = rec.all("/ops")[1]
    assert resent.received_at < lapses_at - 60, (resent.received_at, lapses_at)
    assert second.wait_for_log(
        lambda r: r.get("event") == "delivered" and r.get("endpoint") == "ops", timeout=10
    )
    (released,) = [
        r for r in second.records() if r.get("event", "").startswith("claims of a previous run")
    ]
    assert released["count"] == 1
    assert len(rec.all("/analytics")) == 1  # delivered before the kill: not again
    assert second.stop() == 0
