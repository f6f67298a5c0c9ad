"""/healthz says when the vendor refuses our credentials, and recovers after a fixed config
is reloaded (issue 9)."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest

from tests.kit import Simulator, Workspace, wait_until

pytestmark = pytest.mark.slow


def test_rejected_credentials_make_healthz_degraded_until_fixed(
    workspace: Workspace, simulator: Simulator
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.config["chanjing"]["secret_key"] = "not-the-right-secret"
    workspace.write_config()
    job = simulator.sim.add_job("cred01", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()
    url = f"http://127.0.0.1:{port}/healthz"

    def health() -> httpx.Response | None:
        try:
            return httpx.get(url, timeout=5)
        except httpx.HTTPError:
            return None

    def degraded() -> bool:
        answer = health()
        return answer is not None and answer.status_code == 503

    assert wait_until(degraded, timeout=20), daemon.output
    answer = health()
    assert answer is not None
    assert "vendor rejected app_id/secret_key" in answer.text
    assert "chanjing.secret_key" in answer.text
    assert "not-the-right-secret" not in answer.text

    workspace.config["chanjing"]["secret_key"] = "${TEST_SECRET_KEY}"
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)

    def healthy() -> bool:
        answer = health()
        return answer is not None and answer.status_code == 200

    assert wait_until(healthy, timeout=20), daemon.output
    assert daemon.stop() == 0
