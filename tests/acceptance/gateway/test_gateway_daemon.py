"""The gateway in the real daemon process: it follows reloads (on, moved, clients changed,
accounts removed), an address that cannot be bound stops the start, a token keeps its
account across a restart, and no token or secret reaches the log."""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.kit import APP_ID, SECRET_KEY, ReceiverServer, Simulator, Workspace, free_port
from tests.kit.gateway import BETA, DETAIL, accounts_workspace, serve_two_accounts

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
    forwarded = f'account="default",outcome="forwarded",path="{detail_path}"'
    assert f"chanjing_gateway_calls_total{{{forwarded}}} 1.0" in (scraped), scraped
    assert "chanjing_gateway_limiter_wait_seconds_count 1.0" in scraped
    assert 'chanjing_gateway_calls_total{account="none",outcome="refused"' in scraped, scraped
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


@pytest.fixture(name="accounts_simulator")
def accounts_simulator_fixture() -> Iterator[Simulator]:
    with serve_two_accounts() as simulator:
        yield simulator


def _vendor_forwards(metrics_url: str, account: str) -> float:
    """``chanjing_vendor_calls_total`` of the account's forwarded calls answered code 0."""
    scraped = httpx.get(f"{metrics_url}/metrics").text
    found = 0.0
    for labels, value in re.findall(r"^chanjing_vendor_calls_total\{(.*)\} (\S+)$", scraped, re.M):
        if {f'account="{account}"', 'endpoint="forward"', 'result="0"'} <= set(labels.split(",")):
            found += float(value)
    return found


def test_a_token_keeps_its_account_across_a_restart_and_ends_with_its_account(
    tmp_path: Path, accounts_simulator: Simulator, receiver: ReceiverServer
) -> None:
    """Two accounts: beta's token is beta's after a restart (the simulator counts it on beta,
    the metrics on beta); a reload that removes beta ends its tokens and its credentials."""
    sim = accounts_simulator.sim
    port, metrics = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    ws = accounts_workspace(
        tmp_path,
        accounts_simulator,
        receiver.url,
        gateway={"listen": f"127.0.0.1:{port}"},
        metrics={"listen": f"127.0.0.1:{metrics}"},
    )
    job = sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)

    def beta_calls() -> int:
        return int(sim.stats()["accounts"][BETA.app_id]["by_path"].get(DETAIL, 0))

    def ask(token: str) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(
            f"{url}{DETAIL}", params={"id": job}, headers={"access_token": token}
        ).json()
        return answer

    daemon = ws.start()
    daemon.wait_ready()
    beta = _token(url, BETA.app_id, BETA.secret_key)
    assert beta["code"] == 0, beta
    token = str(beta["data"]["access_token"])  # type: ignore[index]
    alpha = str(_token(url, APP_ID, SECRET_KEY)["data"]["access_token"])  # type: ignore[index]
    assert ask(token)["code"] == 0 and beta_calls() == 1
    assert _vendor_forwards(f"http://127.0.0.1:{metrics}", "beta") == 1.0
    assert daemon.stop() == 0

    daemon = ws.start()  # a restart: the key is in the state, the account in the token
    daemon.wait_ready()
    assert ask(token)["code"] == 0 and beta_calls() == 2
    assert _vendor_forwards(f"http://127.0.0.1:{metrics}", "beta") == 1.0
    assert _vendor_forwards(f"http://127.0.0.1:{metrics}", "alpha") == 0.0
    assert ask(alpha)["code"] == 40000  # beta's job, asked as alpha: the vendor's answer

    ws.config["accounts"] = ws.config["accounts"][:1]  # beta removed
    ws.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=20)
    assert ask(token)["code"] == 10400
    assert _token(url, BETA.app_id, BETA.secret_key)["code"] == 40000
    assert beta_calls() == 2
    assert _token(url, APP_ID, SECRET_KEY)["code"] == 0
    calls = [r for r in daemon.records() if r.get("event") == "gateway call"]
    assert {(c["outcome"], c["account"]) for c in calls if c["outcome"] == "forwarded"} == {
        ("forwarded", "beta"),
        ("forwarded", "alpha"),
    }
    assert daemon.stop() == 0
    for secret in (SECRET_KEY, BETA.secret_key, token, alpha):
        assert secret not in daemon.output
