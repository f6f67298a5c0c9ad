"""The daemon against a vendor whose real limit is lower than the configured qps: the
simulator answers 40001 past 3 calls a second, as the real API does past its limit."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from notifier.service.http_server import ServerThread
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """Overrides conftest's: this account allows 3 calls a second, we are configured for 10."""
    sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=3, seed=11))
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def test_40001_from_the_vendor_slows_the_daemon_down_and_nothing_is_lost(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["endpoints"] = workspace.config["endpoints"][:1]  # ops: every event
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    # Timelines start once the daemon is up: 8 jobs want ~25 polls a second at first.
    jobs = [
        simulator.sim.add_job(f"thr{i:03d}", queue_s=0.5, run_s=1.5 + i % 3, outcome=20)
        for i in range(8)
    ]
    for job in jobs:
        workspace.enqueue_sql(job)

    def all_delivered(r: Receiver) -> bool:
        return {p.payload["data"]["id"] for p in r.accepted("/ops")} == set(jobs)

    assert receiver.receiver.wait_for_blocking(all_delivered, timeout=90), (
        receiver.receiver.summary()
    )
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "delivered" and r.get("job_id", jobs[-1]) in jobs, 10
    )
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    stats = simulator.sim.stats()
    rejected = stats["codes"].get("40001", 0)
    assert rejected > 0, stats  # the test did provoke the vendor's limit
    # Every 40001 the vendor sent was seen and counted as a throttle.
    assert metric(text, 'chanjing_vendor_throttled_total{account="default"}') == rejected
    # ... and by call kind: whichever calls met the limit (detail or list, by timing), the
    # per-endpoint counts add up to the same total.
    by_endpoint = re.findall(
        r'^chanjing_vendor_calls_total\{account="default",endpoint="[a-z_]+",node="[^"]+",'
        r'result="40001"\} ([0-9.e+]+)$',
        text,
        re.MULTILINE,
    )
    assert sum(float(n) for n in by_endpoint) == rejected
    # It slowed down: most calls got through (a client that ignored 40001 would see most
    # of its calls rejected at 10 a second against 3).
    assert rejected <= 0.5 * stats["calls"], stats
    assert daemon.stop() == 0
    watches = workspace.cli_json("watch", "list")
    assert {w["state"] for w in watches} == {"succeeded"}
    assert all(w["errors"] == 0 for w in watches if "errors" in w)
