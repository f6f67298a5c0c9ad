"""The real daemon on SQLite and the vendor lease: taken before the first tick, shown in
/healthz, STATUS= and metrics, released on SIGTERM; a restart after kill -9 does not wait
out the dead process's lease (the instance lock proves it is gone)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from notifier.polling.lease import MARGIN
from notifier.store import Store
from tests.conftest import ReceiverServer, Simulator, Workspace
from tests.integration.service.test_service import NotifySocket

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def index_of(events: list[str], prefix: str) -> int:
    return next(i for i, e in enumerate(events) if e.startswith(prefix))


def test_the_daemon_takes_reports_and_releases_the_lease(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    port = free_port()
    notify = NotifySocket(str(workspace.tmp_path / "notify.sock"))
    workspace.env["NOTIFY_SOCKET"] = notify.address
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["state"].update(node="node-e2e", lease="4s")
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    events = [r.get("event", "") for r in daemon.records()]
    # Taken before the first tick: a lone daemon polls from its start.
    assert index_of(events, "vendor lease acquired") < index_of(events, "ready")
    (acquired,) = [r for r in daemon.records() if r.get("event", "").startswith("vendor lease acq")]
    assert (acquired["node"], acquired["previous_holder"], acquired["lease"]) == (
        "node-e2e",
        None,
        4.0,
    )
    (starting,) = [r for r in daemon.records() if r.get("event") == "starting"]
    assert (starting["node"], starting["lease"]) == ("node-e2e", 4.0)

    job = simulator.sim.add_job("leasee2e01", queue_s=0.2, run_s=0.5, outcome=20)
    workspace.enqueue_sql(job)
    assert receiver.receiver.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 1, timeout=30)
    assert daemon.wait_for_log(lambda r: r.get("event") == "metrics listening", timeout=5)
    base = f"http://127.0.0.1:{port}"
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert (health.status_code, health.text.strip()) == (
        200,
        "ok; vendor lease held by this node (node-e2e)",
    )
    text = httpx.get(f"{base}/metrics", timeout=5).text
    for needle in (
        'chanjing_lease_held{node="node-e2e"} 1.0',
        'chanjing_lease_changes_total{change="acquired"} 1.0',
        'chanjing_lease_changes_total{change="lost"} 0.0',
        'chanjing_vendor_calls_total{endpoint="detail",node="node-e2e",result="0"}',
        "chanjing_vendor_calls_withheld_total 0.0",
        "chanjing_lease_seconds_left ",
    ):
        assert needle in text, needle
    assert notify.wait_for(
        lambda ns: any(
            line.startswith("STATUS=watching")
            and line.endswith("; vendor lease held by this node (node-e2e)")
            for _t, line in ns.lines()
        ),
        timeout=15,
    )
    notify.close()

    assert daemon.stop() == 0
    events = [r.get("event", "") for r in daemon.records()]
    stopping, stopped = index_of(events, "stopping"), index_of(events, "stopped")
    assert stopping < index_of(events, "vendor lease released") < stopped
    # Handed over: another node takes it at most MARGIN after the stop began (the daemon's
    # last calls may still have been on their way), not after the 4 s lease.
    with Store(workspace.state_path) as other:
        holder = other.lease_holder("vendor")
        assert holder is None or (holder[0] == "node-e2e" and holder[1] <= MARGIN)
        deadline = time.monotonic() + 30
        while other.acquire_lease("vendor", "node-b", 10.0) is None:
            assert time.monotonic() < deadline, "the lease was never released"
            time.sleep(0.05)
    assert [r for r in daemon.records() if r.get("level") in ("warning", "error")] == []


def test_a_restart_after_kill_9_takes_the_dead_daemons_lease_at_once(
    workspace: Workspace,
) -> None:
    """With a 1 h lease: waiting it out would show as a daemon that never polls."""
    workspace.config["state"]["lease"] = "1h"
    workspace.write_config()
    first = workspace.start()
    first.wait_ready()
    dead_node = f"{socket.gethostname()}:{first.popen.pid}"
    assert first.wait_for_log(
        lambda r: (
            r.get("event", "").startswith("vendor lease acquired") and r.get("node") == dead_node
        ),
        timeout=5,
    )
    first.kill9()
    with Store(workspace.state_path) as store:
        holder = store.lease_holder("vendor")
        assert holder is not None and holder[0] == dead_node  # not released: killed

    second = workspace.start()
    second.wait_ready()
    (acquired,) = [
        r for r in second.records() if r.get("event", "").startswith("vendor lease acquired")
    ]
    assert acquired["node"] == f"{socket.gethostname()}:{second.popen.pid}"
    assert acquired["previous_holder"] == dead_node
    assert second.stop() == 0
