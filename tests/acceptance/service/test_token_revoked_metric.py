"""The daemon reports a revocation of its vendor token on /metrics (issue 17, part 12)."""

from __future__ import annotations

import socket

import httpx
import pytest

from notifier.polling.vendor import TOKEN_REVOKED_MESSAGE
from tests.kit import SECRET_KEY, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def test_a_revoked_token_is_warned_about_and_counted_on_metrics(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()

    def delivered(count: int) -> bool:
        return receiver.receiver.wait_for_blocking(
            lambda r: len(r.accepted("/ops")) == count, timeout=30
        )

    # A job seen to its end: the daemon holds a token.
    workspace.enqueue_sql(simulator.sim.add_job("revoked01", queue_s=0, run_s=0.2, outcome=20))
    assert delivered(1)
    # Another program of the account fetches a token: the daemon's next call gets 10400.
    answer = httpx.post(
        f"{simulator.url}/open/v1/access_token",
        json={"app_id": "test-app", "secret_key": SECRET_KEY},
        timeout=5,
    )
    assert answer.json()["code"] == 0
    workspace.enqueue_sql(simulator.sim.add_job("revoked02", queue_s=0, run_s=0.2, outcome=20))
    assert delivered(2)

    assert daemon.wait_for_log(lambda r: r.get("event") == TOKEN_REVOKED_MESSAGE, timeout=10)
    [warning] = [r for r in daemon.records() if r.get("event") == TOKEN_REVOKED_MESSAGE]
    assert warning["level"] == "warning" and "gateway" in warning["hint"]
    assert answer.json()["data"]["access_token"] not in daemon.output
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'chanjing_vendor_token_revoked_total{account="default"} 1.0' in text
    assert daemon.stop() == 0
