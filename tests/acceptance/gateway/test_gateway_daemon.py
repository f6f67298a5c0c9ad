"""The gateway in the real daemon process: it follows reloads (on, moved, clients changed),
an address that cannot be bound stops the start, and no token or secret reaches the log."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest

from tests.kit import SECRET_KEY, Simulator, Workspace, free_port

pytestmark = pytest.mark.slow

SHOP_SECRET = "shop-secret-4b1d9e2c"


def _token(url: str, app_id: str, secret: str) -> dict[str, object]:
    body = {"app_id": app_id, "secret_key": secret}
    answer: dict[str, object] = httpx.post(f"{url}/open/v1/access_token", json=body).json()
    return answer


def test_sighup_turns_the_gateway_on_and_changes_its_clients(
    workspace: Workspace, simulator: Simulator
) -> None:
    metrics = free_port()
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workspace.config["gateway"] = {
        "listen": f"127.0.0.1:{port}",
        "clients": [{"name": "shop", "app_id": "shop-app", "secret_key": SHOP_SECRET}],
    }
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "gateway listening", timeout=20)
    shop = _token(url, "shop-app", SHOP_SECRET)
    assert shop["code"] == 0, shop
    token = shop["data"]["access_token"]  # type: ignore[index]
    job_id = simulator.sim.add_job(queue_s=0, run_s=60)
    detail = f"{url}/open/v1/video_lip_sync/detail"
    answer = httpx.get(detail, params={"id": job_id}, headers={"access_token": token}).json()
    assert answer["code"] == 0 and answer["data"]["id"] == job_id, answer
    # The client is removed: its tokens stop at once; the account's credentials still work.
    workspace.config["gateway"]["clients"] = []
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)

    def reloads() -> int:
        return sum(r.get("event") == "reloaded" for r in daemon.records())

    assert daemon.wait_for_log(lambda _r: reloads() >= 2, timeout=20)
    answer = httpx.get(detail, params={"id": job_id}, headers={"access_token": token}).json()
    assert answer["code"] == 10400
    assert _token(url, "shop-app", SHOP_SECRET)["code"] == 40000
    assert _token(url, "test-app", SECRET_KEY)["code"] == 0
    calls = [r for r in daemon.records() if r.get("event") == "gateway call"]
    assert {c["outcome"] for c in calls} >= {"token", "forwarded", "refused"}
    assert {c["client"] for c in calls if c["outcome"] == "forwarded"} == {"shop"}
    scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
    detail_path = "/open/v1/video_lip_sync/detail"
    assert f'chanjing_gateway_calls_total{{outcome="forwarded",path="{detail_path}"}} 1.0' in (
        scraped
    ), scraped
    assert "chanjing_gateway_limiter_wait_seconds_count 1.0" in scraped
    assert daemon.stop() == 0
    for secret in (SHOP_SECRET, SECRET_KEY, str(token)):
        assert secret not in daemon.output


def test_a_gateway_address_that_cannot_be_bound_stops_the_start(workspace: Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace.config["gateway"] = {"listen": f"127.0.0.1:{port}"}
        workspace.write_config()
        daemon = workspace.start()
        assert daemon.popen.wait(20) == 1
    daemon.stop()
    (line,) = [r for r in daemon.records() if r.get("event") == "cannot start: gateway.listen"]
    assert line["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert not any(r.get("event") == "ready" for r in daemon.records())
