"""Service behaviour: sd_notify protocol, reload signalling, /metrics and /healthz."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notifier.tools.receiver import Receiver
from tests.kit import NotifySocket, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifySocket]:
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
    else:
        address = f"@chanjing-test-{time.monotonic_ns()}"
    ns = NotifySocket(address)
    yield ns
    ns.close()


def count(ns: NotifySocket, line: str, since: float = 0.0) -> int:
    return sum(1 for t, entry in ns.lines() if entry == line and t >= since)


@pytest.mark.realtime
def test_sd_notify_ready_watchdog_reload_stopping(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    notify_socket: NotifySocket,
) -> None:
    workspace.env.update(NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="1000000")
    daemon = workspace.start()
    assert notify_socket.wait_for(lambda ns: count(ns, "READY=1") >= 1, timeout=20), daemon.output
    ready_at = next(t for t, line in notify_socket.lines() if line == "READY=1")
    assert any(line.startswith("STATUS=watching") for _, line in notify_socket.lines())
    # Pings every half WATCHDOG_USEC: at least 3 within 4 s after READY (a lower bound).
    assert notify_socket.wait_for(
        lambda ns: count(ns, "WATCHDOG=1", since=ready_at) >= 3, timeout=10
    )

    # Reload with the watch file unchanged: the re-read in between RELOADING and READY can
    # only be SIGHUP's (the 2 s tick logs a file only when it changed).
    assert daemon.wait_for_log(lambda r: r.get("event") == "watch file loaded", timeout=10)
    loaded = sum(1 for r in daemon.records() if r.get("event") == "watch file loaded")
    daemon.popen.send_signal(signal.SIGHUP)
    assert notify_socket.wait_for(
        lambda ns: any(line == "RELOADING=1" for _, line in ns.lines()), timeout=10
    )
    lines = [line for _, line in notify_socket.lines()]
    reload_at = lines.index("RELOADING=1")
    assert lines[reload_at + 1].startswith("MONOTONIC_USEC=")
    assert notify_socket.wait_for(
        lambda ns: "READY=1" in [line for _, line in ns.lines()][reload_at:], timeout=10
    )
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    reread = [r for r in daemon.records() if r.get("event") == "watch file loaded"][loaded:]
    assert len(reread) == 1, daemon.output
    assert daemon.stop() == 0
    assert "STOPPING=1" in [line for _, line in notify_socket.lines()]


def test_silent_without_notify_socket(workspace: Workspace) -> None:
    workspace.env.pop("NOTIFY_SOCKET", None)
    workspace.env["WATCHDOG_USEC"] = "200000"  # asks for pings; with no socket they go nowhere
    daemon = workspace.start()
    daemon.wait_ready()
    daemon.popen.send_signal(signal.SIGHUP)  # RELOADING/READY: nowhere to send them either
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    assert daemon.stop() == 0
    records = daemon.records()
    assert [r for r in records if r.get("unparsed")] == [], daemon.output  # no tracebacks
    assert [r for r in records if r.get("level") in ("warning", "error", "critical")] == []
    assert [r["event"] for r in records][-1] == "stopped"


@pytest.mark.realtime
def test_metrics_and_healthz(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["state"]["node"] = "node-a"
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    # The job's timeline starts now, not before the daemon's start-up (however slow that
    # was), and long enough to be seen running first: detection latency is measured from
    # there. The queue table takes it without a CLI process in between.
    job = simulator.sim.add_job("metrics01", queue_s=0.5, run_s=4, outcome=20)
    workspace.enqueue_sql(job)

    def delivered(r: Receiver) -> bool:
        return len(r.accepted("/ops")) == 1 and len(r.accepted("/analytics")) == 1

    assert receiver.receiver.wait_for_blocking(delivered, timeout=30)
    assert daemon.wait_for_log(lambda r: r.get("event") == "metrics listening", timeout=5)
    base = f"http://127.0.0.1:{port}"
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.text.strip() == "ok; vendor lease held by this node (node-a)"
    # The store records a delivery just after the receiver answered: wait for that.
    for endpoint in ("ops", "analytics"):
        assert daemon.wait_for_log(
            lambda r, e=endpoint: r.get("event") == "delivered" and r.get("endpoint") == e, 10
        )
    text = httpx.get(f"{base}/metrics", timeout=5).text
    for needle in (
        'chanjing_vendor_calls_total{account="default",endpoint="detail",node="node-a",result="0"}',
        'chanjing_vendor_calls_total{account="default",endpoint="access_token",node="node-a",'
        'result="0"} 1.0',
        'chanjing_lease_held{account="default",node="node-a"} 1.0',
        "chanjing_vendor_latency_seconds_bucket",
        'chanjing_vendor_throttled_total{account="default"} 0.0',
        'chanjing_watches{state="succeeded"} 1.0',
        'chanjing_deliveries{endpoint="ops",state="delivered"} 1.0',
        'chanjing_delivery_attempts_total{endpoint="ops",outcome="ok"} 1.0',
        "chanjing_delivery_latency_seconds_bucket",
        'chanjing_detection_latency_seconds_count{endpoint="ops"} 1.0',
        'chanjing_token_refreshes_total{account="default"} 1.0',
        "chanjing_budget_in_use",
    ):
        assert needle in text, needle
    assert daemon.stop() == 0


def test_reload_applies_new_endpoints_and_keeps_state(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    first = simulator.sim.add_job("reloadep1", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.cli("watch", "add", first)
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 1, timeout=30)

    workspace.config["endpoints"] = [
        *workspace.config["endpoints"],
        {
            "name": "late",
            "type": "webhook",
            "url": f"{receiver.url}/late",
            "secret": "${OPS_SECRET}",
            "events": ["lip_sync.succeeded"],
        },
    ]
    workspace.config["log"] = {"level": "debug"}
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    second = simulator.sim.add_job("reloadep2", queue_s=0.5, run_s=2, outcome=20)
    workspace.cli("watch", "add", second)
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/late")) == 1, timeout=30)
    assert rec.accepted("/late")[0].payload["data"]["id"] == second
    # The log level applied: a job queued for an hour is seen queued by its first poll, which
    # logs its progress at debug (a job that finishes first may be learnt from a sweep).
    third = simulator.sim.add_job("reloadep3", queue_s=3600, run_s=1, outcome=20)
    workspace.cli("watch", "add", third)
    assert daemon.wait_for_log(
        lambda r: r.get("level") == "debug" and r.get("job_id") == third, timeout=30
    ), daemon.output
    assert daemon.stop() == 0
    # The old event was not re-sent to the new endpoint, nor to the old ones.
    assert [r.payload["data"]["id"] for r in rec.accepted("/ops")] == [first, second]


def test_demo_runs_offline_and_exits_zero() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "notifier", "demo"],
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo OK" in result.stdout
    assert "ops (webhook)          17/17 received" in result.stdout
    assert "analytics (webhook)    14/14 received" in result.stdout
    assert "account studio         3/3 jobs notified" in result.stdout
    assert "signature failures     0" in result.stdout
