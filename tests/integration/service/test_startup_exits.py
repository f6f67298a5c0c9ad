"""How `run` ends before or as it starts (issue 20, item 8): a taken ``metrics.listen``
stops the start as a taken ``intake.listen`` does, and ``/healthz`` says so once the vendor
is failing."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from tests.kit import free_port


def test_a_taken_metrics_listen_stops_the_start(workspace: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
        workspace.write_config()
        daemon = workspace.start()
        assert daemon.popen.wait(60) == 1
    daemon.stop()
    (line,) = [r for r in daemon.records() if r.get("event") == "cannot start: metrics.listen"]
    assert line["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert not any(r.get("event") == "ready" for r in daemon.records())


def test_healthz_fails_once_the_vendor_is_failing_for_alerts_vendor_failing_for(
    workspace: Any,
) -> None:
    metrics = free_port()
    workspace.config["chanjing"]["base_url"] = f"http://127.0.0.1:{free_port()}"  # nobody there
    workspace.config["alerts"] = {"vendor_failing_for": "1s"}
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    workspace.write_config()
    workspace.write_watch(["unreachable1"])
    daemon = workspace.start()
    daemon.wait_ready()
    url = f"http://127.0.0.1:{metrics}/healthz"
    deadline = time.monotonic() + 60
    answer = httpx.get(url, timeout=10)
    while answer.status_code == 200 and time.monotonic() < deadline:
        assert answer.text.startswith("ok; ")
        time.sleep(0.1)  # polls of the unreachable vendor fail meanwhile
        answer = httpx.get(url, timeout=10)
    assert answer.status_code == 503, answer.text
    assert answer.text.startswith("vendor failing since ")
    assert "alerts.vendor_failing_for 1s" in answer.text
    assert daemon.stop() == 0
