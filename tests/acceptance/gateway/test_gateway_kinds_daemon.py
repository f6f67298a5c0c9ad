"""The gateway in the real daemon with every kind (issue 21, "done when"): an application's
create of each kind through the gateway gets that kind's events, and its detail calls after
the end are absorbed (no vendor call), TTS's POST detail among them."""

from __future__ import annotations

import httpx
import pytest

from notifier import kinds
from tests.kit import ReceiverServer, Simulator, Workspace, free_port
from tests.kit.kind_jobs import ENDS, KindJobs, await_kind_events

pytestmark = pytest.mark.slow

SHOP_SECRET = "shop-secret-7c3a9e1f"
LOOKS = 3


def _detail(app: httpx.Client, kind: kinds.Kind, job_id: str) -> httpx.Response:
    if kind.poll.method == "GET":
        return app.get(kind.poll.path, params={kind.poll.id_param: job_id})
    return app.post(kind.poll.path, json={kind.poll.id_param: job_id})


def test_creates_of_each_kind_through_the_gateway_get_their_events(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    port = free_port()
    workspace.config["gateway"] = {
        "listen": f"127.0.0.1:{port}",
        "clients": [{"name": "shop", "app_id": "shop-app", "secret_key": SHOP_SECRET}],
    }
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    url = f"http://127.0.0.1:{port}"
    body = {"app_id": "shop-app", "secret_key": SHOP_SECRET}
    token = httpx.post(f"{url}/open/v1/access_token", json=body).json()["data"]["access_token"]
    jobs: KindJobs = {}
    with httpx.Client(base_url=url, headers={"access_token": token}, timeout=20) as app:
        for kind in kinds.KINDS.values():
            assert kind.create_path is not None
            for outcome in ENDS:
                hints = {"queue_s": 0.2, "run_s": 1.0, "outcome": outcome}
                answer = app.post(kind.create_path, json={"_sim": hints}).json()
                assert answer["code"] == 0, (kind.name, answer)
                data = answer["data"]
                jobs[kind.name, outcome] = data if isinstance(data, str) else data[kind.create_id]
        await_kind_events(receiver, jobs)
        before = simulator.sim.stats()["by_path"]
        for (name, _outcome), job_id in jobs.items():
            kind = kinds.get(name)
            for _ in range(LOOKS):
                answer = _detail(app, kind, job_id).json()
                assert answer["code"] == 0 and kind.phase(answer["data"]).terminal, answer
        after = simulator.sim.stats()["by_path"]
    for kind in kinds.KINDS.values():  # the application looked 2 x LOOKS times; the vendor: 0
        assert after.get(kind.poll.path, 0) == before.get(kind.poll.path, 0), kind.name
    absorbed = [
        r
        for r in daemon.records()
        if r.get("event") == "gateway call" and r.get("outcome") == "absorbed"
    ]
    assert len(absorbed) >= len(jobs) * LOOKS
    assert daemon.stop() == 0
