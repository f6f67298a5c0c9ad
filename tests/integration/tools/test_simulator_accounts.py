"""The simulator serving several vendor accounts over real HTTP on 127.0.0.1 (fake clock):
each account has its own token, QPS budget and jobs, and a call belongs to the account whose
token it presents, as on the vendor where the token identifies the app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from notifier.service.http_server import ServerThread
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.sim_jobs import SimInputError
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import T0
from tests.kit.vendor import Vendor

LIST = "/open/v1/video_lip_sync/list"


def two_accounts(vendor_factory: Callable[..., Vendor], b_qps: int = 10, **config: Any) -> Vendor:
    """The default account (demo-app) plus shop-b (named b), on one simulator."""
    return vendor_factory(accounts=(SimAccount("shop-b", "secret-b", b_qps, "b"),), **config)


def token_b(vendor: Vendor) -> str:
    answer = vendor.token("shop-b", "secret-b")
    assert answer["code"] == 0, answer
    token: str = answer["data"]["access_token"]
    return token


def listed(vendor: Vendor, token: str) -> list[str]:
    answer = vendor.post(LIST, {"page": 1, "page_size": 100}, token)
    assert answer["code"] == 0, answer
    return [item["id"] for item in answer["data"]["list"]]


def test_a_token_sees_only_its_own_accounts_jobs(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = two_accounts(vendor_factory)
    mine = vendor.sim.add_job("job-a")
    theirs = vendor.sim.add_job("job-b", account="shop-b")
    named = vendor.sim.add_job("job-b2", account="b")  # by name as well as by app id
    admin = vendor.http.post("/_sim/jobs", json=[{"id": "job-b3", "account": "shop-b"}])
    assert admin.json() == {"ids": ["job-b3"]}
    a, b = vendor.new_token(), token_b(vendor)

    assert vendor.detail(mine, a)["code"] == 0
    assert vendor.detail(theirs, b)["code"] == 0
    for job, other in ((theirs, a), (named, a), ("job-b3", a), (mine, b)):
        answer = vendor.detail(job, other)
        assert (answer["code"], answer["msg"], answer["data"]) == (40000, "record not found", None)
    assert listed(vendor, a) == ["job-a"]
    assert sorted(listed(vendor, b)) == ["job-b", "job-b2", "job-b3"]


def test_the_same_id_on_two_accounts_is_two_jobs(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = two_accounts(vendor_factory)
    vendor.sim.add_job("same", queue_s=0, run_s=0, outcome="succeeded")
    vendor.sim.add_job("same", queue_s=0, run_s=0, outcome="failed", account="shop-b")
    assert vendor.detail("same", vendor.new_token())["data"]["status"] == 20
    assert vendor.detail("same", token_b(vendor))["data"]["status"] == 30
    with pytest.raises(SimInputError, match="already exists"):
        vendor.sim.add_job("same", account="shop-b")


def test_a_create_belongs_to_the_account_whose_token_made_it(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = two_accounts(vendor_factory)
    b = token_b(vendor)
    created = vendor.post("/open/v1/video_lip_sync/create", {"video_url": "v"}, b)
    assert created["code"] == 0, created
    job_id = created["data"]
    assert listed(vendor, b) == [job_id]
    assert listed(vendor, vendor.new_token()) == []
    (row,) = vendor.sim.jobs("shop-b")
    assert (row["id"], row["account"]) == (job_id, "shop-b")
    assert vendor.sim.jobs("demo-app") == []


def test_refreshing_one_accounts_token_leaves_the_others_valid(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = two_accounts(vendor_factory)
    job_a, job_b = vendor.sim.add_job(), vendor.sim.add_job(account="shop-b")
    a_old, b = vendor.new_token(), token_b(vendor)
    a_new = vendor.new_token()
    assert vendor.detail(job_a, a_old)["code"] == 10400
    assert vendor.detail(job_a, a_new)["code"] == 0
    assert vendor.detail(job_b, b)["code"] == 0  # A's reissue did not touch B's token

    assert vendor.http.post("/_sim/revoke_token", params={"account": "shop-b"}).status_code == 200
    assert vendor.detail(job_b, b)["code"] == 10400
    assert vendor.detail(job_a, a_new)["code"] == 0
    assert vendor.sim.current_token() == a_new
    assert vendor.sim.current_token("shop-b") is None


def test_one_account_over_its_budget_leaves_the_other_untouched(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = two_accounts(vendor_factory, b_qps=2, qps=3)
    job_a, job_b = vendor.sim.add_job(), vendor.sim.add_job(account="shop-b")
    second = int(T0)
    a = vendor.new_token()  # A's arrival 1
    assert [vendor.detail(job_a, a)["code"] for _ in range(3)] == [0, 0, 40001]
    b = token_b(vendor)  # B's arrival 1, the same second
    assert vendor.detail(job_b, b)["code"] == 0  # B's arrival 2
    assert vendor.detail(job_b, b)["code"] == 40001  # B's own budget is 2
    assert vendor.token()["code"] == 40001  # A's arrival 5: no new token, the old one stays
    vendor.clock.now = second + 1.0
    assert vendor.detail(job_b, b)["code"] == 0
    assert vendor.detail(job_a, a)["code"] == 0

    stats = vendor.sim.stats()
    accounts = stats["accounts"]
    assert accounts["demo-app"]["per_second"] == {str(second): 5, str(second + 1): 1}
    assert accounts["shop-b"]["per_second"] == {str(second): 3, str(second + 1): 1}
    assert accounts["demo-app"]["codes"] == {"0": 4, "40001": 2}
    assert accounts["shop-b"]["codes"] == {"0": 3, "40001": 1}
    # The simulator-wide keys add the accounts up, as before.
    assert stats["calls"] == 10
    assert stats["per_second"] == {str(second): 8, str(second + 1): 2}
    assert stats["codes"] == {"0": 7, "40001": 3}


def test_a_stale_token_counts_toward_the_account_it_was_issued_to(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = two_accounts(vendor_factory, b_qps=2, qps=2)
    job_a = vendor.sim.add_job()
    stale = token_b(vendor)
    token_b(vendor)  # B's second arrival: B is at its budget of 2
    assert vendor.detail("anything", stale)["code"] == 40001  # B's, not A's
    a = vendor.new_token()
    assert vendor.detail(job_a, a)["code"] == 0
    assert vendor.detail(job_a, "f" * 32)["code"] == 40001  # never issued: the first account
    per_account = {app: acc["calls"] for app, acc in vendor.sim.stats()["accounts"].items()}
    assert per_account == {"demo-app": 3, "shop-b": 3}


def test_stats_and_admin_views_per_account(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = two_accounts(vendor_factory)
    vendor.sim.add_job("job-a")
    vendor.sim.add_job("job-b", account="shop-b")
    vendor.sim.add_job("vb", kind="video", account="shop-b")
    vendor.detail("job-b", token_b(vendor))

    stats = vendor.sim.stats()
    assert set(stats["jobs"]) == {"job-a", "shop-b/job-b", "shop-b/video:vb"}
    assert stats["tokens_issued"] == 1
    b = stats["accounts"]["shop-b"]
    assert b == {
        "name": "b",
        "qps": 10,
        "calls": 2,
        "per_second": {str(int(T0)): 2},
        "max_per_second": 2,
        "tokens_issued": 1,
        "by_path": {"/open/v1/access_token": 1, "/open/v1/video_lip_sync/detail": 1},
        "codes": {"0": 2},
        "jobs": 2,
    }
    assert stats["accounts"]["demo-app"]["calls"] == 0
    assert stats["accounts"]["demo-app"]["jobs"] == 1

    only_b = httpx.get(f"{vendor.server.url}/_sim/stats", params={"account": "b"}).json()
    assert only_b["calls"] == 2 and only_b["qps"] == 10
    assert set(only_b["jobs"]) == {"shop-b/job-b", "shop-b/video:vb"}
    assert list(only_b["accounts"]) == ["shop-b"]
    rows = httpx.get(f"{vendor.server.url}/_sim/jobs", params={"account": "shop-b"}).json()
    assert sorted(row["id"] for row in rows["jobs"]) == ["job-b", "vb"]

    vendor.sim.reset_stats()
    assert vendor.sim.stats()["accounts"]["shop-b"]["calls"] == 0


def test_an_unknown_account_is_refused_with_the_ones_served(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = two_accounts(vendor_factory)
    with pytest.raises(SimInputError, match=r"unknown account 'shop-c'.*demo-app, shop-b"):
        vendor.sim.add_job(account="shop-c")
    for method, path in (
        ("GET", "/_sim/stats"),
        ("GET", "/_sim/jobs"),
        ("POST", "/_sim/revoke_token"),
    ):
        resp = vendor.http.request(method, path, params={"account": "shop-c"})
        assert resp.status_code == 400
        assert "unknown account 'shop-c'" in resp.json()["error"]
    resp = vendor.http.post("/_sim/jobs", json={"account": "shop-c"})
    assert resp.status_code == 400 and "shop-c" in resp.json()["error"]
    assert vendor.token("shop-c", "secret-b")["code"] == 40000
    assert vendor.token("shop-b", "demo-secret")["code"] == 40000  # each its own secret


def test_an_account_given_twice_is_refused() -> None:
    for twice in (SimAccount("demo-app", "x"), SimAccount("shop-b", "x", name="demo-app")):
        with pytest.raises(SimInputError, match="'demo-app' is given twice"):
            VendorSimulator(SimConfig(accounts=(twice,)))


def test_a_job_of_the_second_account_calls_back(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = two_accounts(vendor_factory)
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    def receiver_app() -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            received.append(await request.json())
            arrived.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app

    with ServerThread(receiver_app) as receiver:
        b = token_b(vendor)
        body = {"callback": f"{receiver.url}/hook", "_sim": {"queue_s": 0, "run_s": 1}}
        job = vendor.post("/open/v1/video_lip_sync/create", body, b)["data"]
        vendor.clock.advance(1)
        assert arrived.wait(10), "callback never arrived"
    assert [envelope["data"]["id"] for envelope in received] == [job]
    assert vendor.sim.stats()["jobs"][f"shop-b/{job}"]["callback_sent_at"] == T0 + 1
