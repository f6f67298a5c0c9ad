"""Vendor health is one per account (issue 22, item 2), and events are routed by account
(item 3): ``vendor.failing`` / ``vendor.recovered`` name the account whose calls fail, one
account failing never reports another as failing, the credentials message names where that
account is configured; an endpoint with ``accounts`` gets only those accounts' events (job
events, and operational events about an account), and events of no account as before."""

from __future__ import annotations

import json
from pathlib import Path

from notifier.delivery.operational import (
    TOKEN_REVOCATIONS_FAILING,
    AlertSettings,
    OperationalEvents,
    OperationalState,
    OpsFact,
    Thresholds,
    build_operational_event,
    route_operational,
)
from notifier.delivery.senders.slack import build_slack_message
from notifier.delivery.transition import build_event, route
from notifier.models import FAILED, SUCCEEDED, VENDOR_FAILING, Event, JobDetail
from notifier.service.routing import account_keys, routes, subscriptions
from tests.kit import FakeClock, StoreFactory
from tests.kit.config_files import BASE, load_text

T0 = 1_700_000_000.0
TWO = """\
accounts:
  - {name: media, app_id: app-media, secret_key: ${SK}}
  - {name: shop, app_id: app-shop, secret_key: ${SK}, default: true}
"""
ENDPOINTS = """\
endpoints:
  - {name: everyone, type: webhook, url: "https://x.test/a", secret: ${WH},
     events: ["*", vendor.failing, vendor.recovered, endpoint.failing, delivery.dead]}
  - {name: shop-ops, type: webhook, url: "https://x.test/b", secret: ${WH}, accounts: [shop],
     events: ["*", vendor.failing, vendor.recovered, endpoint.failing, delivery.dead]}
  - {name: media-ops, type: webhook, url: "https://x.test/c", secret: ${WH}, accounts: [media],
     events: ["*", vendor.failing, vendor.recovered, endpoint.failing, delivery.dead]}
"""


def _state(tmp_path: Path, text: str = TWO) -> OperationalState:
    keys = dict(account_keys(load_text(tmp_path, text)))
    return OperationalState(Thresholds(vendor_failing_for=120), account_keys=keys)


def test_one_accounts_rejected_credentials_fail_that_account_only(tmp_path: Path) -> None:
    state = _state(tmp_path)
    (failing,) = state.vendor_call("shop", "access_token", "40000", T0)
    assert (failing.type, failing.account, failing.data["account"]) == (
        VENDOR_FAILING,
        "shop",
        "shop",
    )
    assert failing.data["error"] == (
        "credentials rejected (check accounts[1] (shop).app_id / accounts[1] (shop).secret_key)"
    )
    assert list(failing.data) == ["account", "since", "error", "failures"]
    # The other account answers: it is not failing, and its success recovers nothing.
    assert state.vendor_call("media", "detail", "0", T0 + 1) == []
    assert set(state.failing_vendors()) == {"shop"}
    assert not state.vendor("media").failing and state.vendor("shop").failing
    # Its own calls failing long enough fail it on its own; shop is not told again.
    assert state.vendor_call("media", "detail", "timeout", T0 + 2) == []
    assert state.vendor_call("shop", "access_token", "40000", T0 + 3) == []
    (media,) = state.vendor_call("media", "detail", "timeout", T0 + 122)
    assert (media.account, media.data["error"]) == ("media", "detail: timeout")
    # Each recovers on its own answer, and says which it is.
    (recovered,) = state.vendor_call("shop", "access_token", "0", T0 + 130)
    assert (recovered.type, recovered.data["account"]) == ("vendor.recovered", "shop")
    assert set(state.failing_vendors()) == {"media"}


def test_the_chanjing_section_is_named_as_before(tmp_path: Path) -> None:
    state = _state(tmp_path, BASE)
    (failing,) = state.vendor_call("default", "access_token", "40000", T0)
    assert failing.data["error"] == (
        "credentials rejected (check chanjing.app_id / chanjing.secret_key)"
    )
    assert failing.data["account"] == "default"


def test_revocations_count_per_account() -> None:
    state = OperationalState()
    # Spread over two accounts, as many revocations as would fail one: none fails.
    for n in range(TOKEN_REVOCATIONS_FAILING - 1):
        assert state.token_revoked("shop", T0 + n) == []
        assert state.token_revoked("media", T0 + n) == []
    (failing,) = state.token_revoked("shop", T0 + 10)
    assert failing.account == "shop"
    assert set(state.failing_vendors()) == {"shop"}


def test_an_account_removed_by_a_reload_is_forgotten(tmp_path: Path) -> None:
    config = load_text(tmp_path, TWO + ENDPOINTS)
    ops = OperationalEvents(_NoStore(), AlertSettings(routes(config), Thresholds()))  # type: ignore[arg-type]
    ops.state.vendor_call("media", "access_token", "40000", T0)
    ops.state.vendor_call("shop", "access_token", "40000", T0)
    one = "accounts:\n  - {name: shop, app_id: app-shop, secret_key: ${SK}}\n"
    smaller = load_text(tmp_path, one + ENDPOINTS.replace(", accounts: [media]", ""))
    ops.configure(AlertSettings(routes(smaller), Thresholds(), account_keys(smaller)))
    assert set(ops.state.failing_vendors()) == {"shop"}


class _NoStore:
    """Nothing is recorded by these tests."""


def test_operational_events_go_to_the_endpoints_of_their_account(tmp_path: Path) -> None:
    table = routes(load_text(tmp_path, TWO + ENDPOINTS))
    shop = OpsFact(VENDOR_FAILING, {"account": "shop"}, account="shop")
    media = OpsFact(VENDOR_FAILING, {"account": "media"}, account="media")
    assert route_operational(shop, table) == ["everyone", "shop-ops"]
    assert route_operational(media, table) == ["everyone", "media-ops"]
    # The daemon's own events (of no account) go to every endpoint listing them, as before.
    about = OpsFact("endpoint.failing", {"endpoint": "everyone"}, "everyone")
    assert route_operational(about, table) == ["shop-ops", "media-ops"]
    # A dead delivery is about the dead event's account.
    dead_event = Event("evt_1", "job-1", SUCCEEDED, T0, b"{}", account="shop")
    (dead,) = OperationalState().dead(dead_event, "media-ops", 9, "HTTP 500", T0)
    assert (dead.account, dead.data["account"]) == ("shop", "shop")
    assert route_operational(dead, table) == ["everyone", "shop-ops"]
    stored = build_operational_event(dead, T0)
    assert stored.account == "shop" and stored.payload["data"]["account"] == "shop"


def test_job_events_go_to_the_endpoints_of_their_account(tmp_path: Path) -> None:
    config = load_text(tmp_path, TWO + ENDPOINTS)
    assert route(SUCCEEDED, None, subscriptions(config, "shop")) == ["everyone", "shop-ops"]
    assert route(FAILED, None, subscriptions(config, "media")) == ["everyone", "media-ops"]
    # A watch that names another account's endpoint does not reach it (nor is the name kept
    # as one of an endpoint not configured yet): the endpoint's accounts say no.
    assert route(SUCCEEDED, ["media-ops"], subscriptions(config, "shop")) == []
    assert route(SUCCEEDED, ["media-ops", "later"], subscriptions(config, "shop")) == ["later"]
    # Events of no account: every endpoint.
    assert [n for n, _e in subscriptions(config)] == ["everyone", "shop-ops", "media-ops"]
    assert route(SUCCEEDED, None, subscriptions(config)) == ["everyone", "shop-ops", "media-ops"]


def test_recorded_operational_events_name_their_account(
    tmp_path: Path, make_store: StoreFactory
) -> None:
    config = load_text(tmp_path, TWO + ENDPOINTS)
    store = make_store()
    settings = AlertSettings(routes(config), Thresholds(), account_keys(config))
    ops = OperationalEvents(store, settings, clock=FakeClock(T0))
    ops.on_vendor_call("media", "access_token", "40000", 0.1)
    (row,) = store.list_events()
    assert (row["type"], row["account"]) == (VENDOR_FAILING, "media")
    endpoints = sorted(d["endpoint"] for d in store.list_deliveries())
    assert endpoints == ["everyone", "media-ops"]
    (page,) = store.events_after(None, 10)
    assert page["data"]["account"] == "media"
    assert "accounts[0] (media).secret_key" in page["data"]["error"]


def test_slack_names_the_account_of_any_but_the_default() -> None:
    detail = JobDetail("job-7", 30, 40, "boom", account="shop")
    shop = build_slack_message(json.loads(build_event(detail, {}, T0).body))
    assert "on account shop" in shop["text"]
    assert any("*Account*\n`shop`" in f["text"] for f in shop["blocks"][1]["fields"])
    default = JobDetail("job-7", 30, 40, "boom")
    plain = build_slack_message(json.loads(build_event(default, {}, T0).body))
    assert "account" not in plain["text"].lower()
    assert not any("Account" in f["text"] for f in plain["blocks"][1]["fields"])
    failing = OperationalState().vendor_call("shop", "access_token", "40000", T0)
    message = build_slack_message(json.loads(build_operational_event(failing[0], T0).body))
    assert message["text"].startswith("🚨 Chanjing API failing: shop — credentials rejected")
