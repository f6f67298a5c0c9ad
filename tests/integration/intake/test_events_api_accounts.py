"""``GET /v1/events`` through the real intake API over a real store (issue 22): each job event's
body names its account, the same job id on two accounts is two events with their own ids, and
a ``vendor.failing`` names the account whose calls fail; an event about no account names none."""

from __future__ import annotations

from notifier.delivery.operational import OperationalState, OpsFact, build_operational_event
from notifier.delivery.transition import build_event
from notifier.models import DEFAULT_ACCOUNT, JobDetail, WatchSpec
from tests.kit.intake_api import Api, api_fixture  # noqa: F401


def test_each_event_names_its_account(api: Api) -> None:
    store = api.store
    store.add_watches([WatchSpec("job-1"), WatchSpec("job-1", account="shop")], "queue")
    for account in (DEFAULT_ACCOUNT, "shop"):
        detail = JobDetail("job-1", 20, 100, "success", account=account)
        assert store.record_terminal(detail, build_event(detail, {}, store.now()), ["ops"])
    (failing,) = OperationalState().vendor_call("shop", "access_token", "40000", store.now())
    store.record_operational(build_operational_event(failing, store.now()), ["ops"])
    about = OpsFact("endpoint.failing", {"endpoint": "analytics"}, "analytics")
    store.record_operational(build_operational_event(about, store.now()), ["ops"])
    with api.client() as client:
        answer = client.get("/v1/events", params={"limit": 10})
    assert answer.status_code == 200
    events = answer.json()["events"]
    shown = [(e["type"], e["data"].get("id")) for e in events]
    assert shown == [
        ("lip_sync.succeeded", "job-1"),
        ("lip_sync.succeeded", "job-1"),
        ("vendor.failing", None),
        ("endpoint.failing", None),
    ]
    assert [e["data"].get("account") for e in events] == [DEFAULT_ACCOUNT, "shop", "shop", None]
    assert events[0]["id"] != events[1]["id"]
