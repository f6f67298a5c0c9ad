"""Each account's lease and vendor health in /metrics (an ``account`` label) and in /healthz
and the status line (named by account when there are several; as before accounts when there
is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notifier.delivery.operational import AlertSettings, OperationalEvents, Thresholds
from notifier.polling.lease import LeaseKeeper, LeaseSettings
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import VendorClient, VendorSettings
from notifier.service.health import Health
from notifier.service.metrics import Metrics
from notifier.service.store_outage import StoreOutage
from notifier.store import Store


def _lease(account: dict[str, Any]) -> dict[str, Any]:
    return {"node": "n1", "seconds_left": 0.0, "withheld": 0, **account}


def test_each_accounts_budget_and_lease_have_their_own_series() -> None:
    metrics = Metrics("n1")
    live = {
        "lanes": {
            "shop": {"budget_in_use": 0.5, "qps": 10, "polls_in_flight": 3},
            "media": {"budget_in_use": 0.0, "qps": 5, "polls_in_flight": 0},
        },
        "results_unrecorded": 0,
        "state_writable": 1,
        "vendor_failing": {"shop": 0, "media": 1},
        "leases": {
            "shop": _lease({"held": 1, "changes": {"acquired": 1, "handed_over": 0}}),
            "media": _lease({"held": 0, "changes": {"acquired": 2, "handed_over": 1}}),
        },
    }
    metrics.watch_state(lambda: {"watches": {}, "deliveries": {}}, lambda: live)
    metrics.refresh_live()
    text = metrics.render().decode()
    assert 'chanjing_lease_held{account="shop",node="n1"} 1.0' in text
    assert 'chanjing_lease_held{account="media",node="n1"} 0.0' in text
    assert 'chanjing_lease_changes_total{account="media",change="handed_over"} 1.0' in text
    assert 'chanjing_vendor_calls_withheld_total{account="shop"} 0.0' in text
    assert 'chanjing_budget_qps{account="media"} 5.0' in text
    assert 'chanjing_polls_in_flight{account="shop"} 3.0' in text
    assert 'chanjing_vendor_failing{account="media"} 1.0' in text
    assert 'chanjing_vendor_failing{account="shop"} 0.0' in text


async def test_health_names_each_account_when_there_are_several(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    keepers = {name: LeaseKeeper(store, "n1", LeaseSettings(10.0)) for name in ("shop", "media")}
    limiter = RateLimiter(LimiterSettings(10))
    clients = {
        name: VendorClient(
            VendorSettings("http://127.0.0.1:9", name, "s"), limiter=limiter, store=store
        )
        for name in keepers
    }
    lanes = {name: (keepers[name], clients[name]) for name in keepers}
    shown: dict[str, tuple[LeaseKeeper, VendorClient]] = dict(lanes)
    ops = OperationalEvents(store, AlertSettings((), Thresholds()))
    health = Health(store, StoreOutage(store), lambda: shown, None, ops)
    ok, text = health.health()
    assert ok and text == (
        "ok; shop: standby (n1): vendor lease held by nobody; "
        "media: standby (n1): vendor lease held by nobody"
    )
    # One account's vendor failing: named, the other's health not in question.
    ops.state.vendor_call("media", "detail", "timeout", 1_700_000_000.0)
    ops.state.vendor_call("media", "detail", "timeout", 1_700_000_200.0)
    ok, text = health.health()
    assert not ok and text.startswith("account media: vendor failing since 2023-11-14T22:13:20")
    assert "shop" not in text and text.endswith("detail: timeout")
    ops.state.vendor_call("media", "detail", "0", 1_700_000_300.0)
    assert health.health()[0]
    shown = {"shop": lanes["shop"]}  # one account: worded as before accounts
    assert health.health()[1] == "ok; standby (n1): vendor lease held by nobody"
    assert health.status_text().endswith("; standby (n1): vendor lease held by nobody")
    for client in clients.values():
        await client.aclose()
    store.close()
