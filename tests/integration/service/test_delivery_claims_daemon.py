"""The real daemon claims each delivery under its node name before sending it: visible in
`deliveries list --json` while the attempt runs, counted in /metrics, released by the result."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def test_the_daemon_claims_under_its_node_name_and_counts_claims(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    rec = receiver.receiver
    rec.set_delay("/ops", 2.0)  # long enough to look at the claim while the POST waits
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
