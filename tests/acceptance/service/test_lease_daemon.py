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
from tests.kit import NotifySocket, ReceiverServer, Simulator, Workspace, free_port

pytestmark = pytest.mark.slow


def check_endpoints(port: int, health: str, needles: tuple[str, ...]) -> None:
    """/healthz answers 200 with ``health``; /metrics shows every needle."""
    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert (answer.status_code, answer.text.strip()) == (200, health)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for needle in needles:
        assert needle in text, needle


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
    check_endpoints(
        port,
        "ok; vendor lease held by this node (node-e2e)",
        (
            'chanjing_lease_held{account="default",node="node-e2e"} 1.0',
            'chanjing_lease_changes_total{account="default",change="acquired"} 1.0',
            'chanjing_lease_changes_total{account="default",change="lost"} 0.0',
            'chanjing_vendor_calls_total{account="default",endpoint="detail",node="node-e2e",result="0"}',
            'chanjing_vendor_calls_withheld_total{account="default"} 0.0',
            'chanjing_lease_seconds_left{account="default"} ',
        ),
    )
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


def test_a_standby_delivers_and_takes_intake_but_calls_no_vendor(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    """Another node takes the lease while a delivery is still being retried: this daemon
    stops calling the vendor, stays healthy, and goes on delivering and taking in watches."""
    port = free_port()
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["state"].update(node="node-a", lease="3s")
    workspace.config["delivery"]["retry_schedule"] = ["1s"] * 8
    workspace.write_config()
    receiver.receiver.script("/ops", [503] * 6)  # accepted at the 7th attempt, ~6 s on
    daemon = workspace.start()
    daemon.wait_ready()
    first = simulator.sim.add_job("standby01", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(first)
    assert receiver.receiver.wait_for_blocking(lambda r: len(r.all("/ops")) >= 1, timeout=30)

    # Node B takes the lease (as if this daemon's had run out; B writes the row).
    with Store(workspace.state_path) as node_b, node_b.transaction():
        node_b._db.execute("UPDATE leases SET owner = 'node-b', expires_at = expires_at + 3600")
    assert daemon.wait_for_log(
        lambda r: r.get("event", "").startswith("vendor lease lost"), timeout=10
    )
    lost_at = time.time()
    (lost,) = [r for r in daemon.records() if r.get("event", "").startswith("vendor lease lost")]
    assert (lost["node"], lost["previous_holder"], lost["holder"]) == ("node-a", "node-a", "node-b")
    assert lost["level"] == "warning"
    calls = simulator.sim.stats()["calls"]

    # Intake still works on a standby; polling is the holder's.
    second = simulator.sim.add_job("standby02", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(second)
    # Deliveries still work on a standby.
    assert receiver.receiver.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 1, timeout=30)
    (delivered,) = receiver.receiver.accepted("/ops")
    assert delivered.received_at > lost_at and delivered.attempt == 7
    watches = {w["job_id"]: w for w in workspace.cli_json("watch", "list")}
    assert watches[second]["state"] == "active"
    assert watches[second]["last_poll_at"] is None

    check_endpoints(
        port,
        "ok; standby (node-a): vendor lease held by node-b",
        (
            'chanjing_lease_held{account="default",node="node-a"} 0.0',
            'chanjing_lease_changes_total{account="default",change="lost"} 1.0',
            'chanjing_lease_seconds_left{account="default"} 0.0',
        ),
    )
    assert simulator.sim.stats()["calls"] == calls  # not one vendor call since

    assert daemon.stop() == 0
    # Not ours to release: node B keeps it.
    with Store(workspace.state_path) as store:
        holder = store.lease_holder("vendor")
        assert holder is not None and holder[0] == "node-b"
    assert not any(r.get("event", "").startswith("vendor lease released") for r in daemon.records())
