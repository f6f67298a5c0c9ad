"""The simulator's busy-account and flaky-id knobs, over real HTTP with a fake clock."""

from __future__ import annotations

from collections.abc import Callable

from tests.kit.vendor import Vendor

LIST = "/open/v1/video_lip_sync/list"


def test_page_size_cap_gives_smaller_pages(vendor_factory: Callable[..., Vendor]) -> None:
    v = vendor_factory(list_page_cap=3)
    for n in range(7):
        v.sim.add_job(f"job-{n}")
        v.clock.advance(1)
    token = v.new_token()
    first = v.post(LIST, {"page": 1, "page_size": 100}, token)["data"]
    assert [d["id"] for d in first["list"]] == ["job-6", "job-5", "job-4"]
    assert first["page_info"] == {"page": 1, "size": 3, "total_count": 7, "total_page": 3}
    second = v.post(LIST, {"page": 2, "page_size": 100}, token)["data"]
    assert [d["id"] for d in second["list"]] == ["job-3", "job-2", "job-1"]
    # Below the cap, the size asked for.
    assert len(v.post(LIST, {"page": 1, "page_size": 2}, token)["data"]["list"]) == 2


def test_a_lagging_list_shows_the_account_as_it_was(vendor: Vendor) -> None:
    vendor.sim.set_faults(list_lag_s=3)
    vendor.sim.add_job("old", queue_s=0, run_s=10)
    vendor.clock.advance(5)
    vendor.sim.add_job("new", queue_s=0, run_s=10)
    vendor.clock.advance(1)
    token = vendor.new_token()
    (item,) = vendor.post(LIST, {"page": 1, "page_size": 10}, token)["data"]["list"]
    assert item["id"] == "old"  # "new" is 1 s old: not listed yet
    assert vendor.detail("old", token)["data"]["progress"] > item["progress"]
    vendor.clock.advance(6)  # old finished at 10 s; the list shows it at 13 s
    listed = {d["id"]: d for d in vendor.post(LIST, {"page_size": 10}, token)["data"]["list"]}
    assert listed["old"]["status"] == 10 and vendor.detail("old", token)["data"]["status"] == 20
    vendor.clock.advance(1)
    listed = {d["id"]: d for d in vendor.post(LIST, {"page_size": 10}, token)["data"]["list"]}
    assert listed["old"]["status"] == 20


def test_noise_jobs_appear_at_their_rate(vendor: Vendor) -> None:
    vendor.sim.set_faults(noise_rate=4)
    vendor.clock.advance(2.6)
    token = vendor.new_token()
    page = vendor.post(LIST, {"page": 1, "page_size": 100}, token)["data"]
    assert page["page_info"]["total_count"] == 10
    assert all(d["id"].startswith("noise-") for d in page["list"])
    vendor.sim.set_faults(noise_rate=0)
    vendor.clock.advance(10)
    page = vendor.post(LIST, {"page": 1, "page_size": 100}, token)["data"]
    assert page["page_info"]["total_count"] == 10


def test_a_job_can_be_unknown_for_a_while(vendor: Vendor) -> None:
    token = vendor.new_token()
    vendor.sim.add_job("twice", reject_first_calls=2)
    vendor.sim.add_job("young", reject_for_s=5)
    codes = [vendor.detail("twice", token)["code"] for _ in range(3)]
    assert codes == [40000, 40000, 0]
    assert vendor.detail("young", token)["code"] == 40000
    listed = vendor.post(LIST, {"page_size": 10}, token)["data"]["list"]
    assert [d["id"] for d in listed] == ["twice"]
    vendor.clock.advance(5)
    assert vendor.detail("young", token)["code"] == 0
    assert vendor.http.post("/_sim/jobs", json={"id": "x", "reject_for_s": -1}).status_code == 400
    assert vendor.http.post("/_sim/faults", json={"list_lag_s": 2.5}).status_code == 200
    assert vendor.sim.faults()["list_lag_s"] == 2.5
