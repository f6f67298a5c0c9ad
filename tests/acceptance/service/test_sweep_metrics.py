"""The list sweep's state on the daemon's /metrics while list calls fail."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.kit import Simulator, Workspace

pytestmark = pytest.mark.slow


def test_failed_sweeps_show_on_metrics(workspace: Workspace, simulator: Simulator) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    job = simulator.sim.add_job("sweepmetrics01", queue_s=0, run_s=1000)
    workspace.cli("watch", "add", job)
    simulator.sim.set_faults(fault_html=1.0)  # every list (and detail) call: a 502 page
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(
        lambda r: (
            r.get("event") == "list sweep failed; detail polls carry on" and r.get("failures") == 2
        ),
        timeout=20,
    ), daemon.output
    assert daemon.wait_for_log(lambda r: r.get("event") == "metrics listening", timeout=5)

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    assert 'chanjing_sweep_page_size{account="default"} 100.0' in text
    assert re.search(r'^chanjing_sweep_paused\{account="default"\} [01]\.0$', text, re.MULTILINE), (
        text
    )
    assert re.search(
        r'^chanjing_sweep_retry_in_seconds\{account="default"\} [0-9.e+-]+$', text, re.MULTILINE
    )
    failed = re.search(
        r'^chanjing_sweeps_total\{account="default",result="failed"\} ([0-9.]+)$', text, re.M
    )
    assert failed is not None and float(failed.group(1)) >= 2
    assert daemon.stop() == 0
