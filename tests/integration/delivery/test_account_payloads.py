"""Events of two vendor accounts through the real store, dispatcher and webhook sender to the
real receiver (issue 22, item 3): the same job id on two accounts is two webhooks with their
own ``webhook-id``, each payload names its ``account``, the signature still verifies with the
``standardwebhooks`` library, and an endpoint limited to one account gets only its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from notifier.delivery.senders import WebhookSender
from notifier.delivery.transition import Route, account_view, build_event, route
from notifier.models import DEFAULT_ACCOUNT, JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import ANALYTICS_SECRET, OPS_SECRET, FakeClock, ReceiverServer
from tests.kit.delivery import attempts_done, make_dispatcher

#: ops takes every account's events; analytics only shop's.
ROUTES: tuple[Route, ...] = (
    ("ops", ("lip_sync.succeeded", "lip_sync.failed"), None),
    ("analytics", ("lip_sync.succeeded", "lip_sync.failed"), ("shop",)),
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_each_accounts_webhook_names_it_and_verifies(
    tmp_path: Path, receiver: ReceiverServer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    with Store(tmp_path / "state.db", clock=clock) as store:
        store.add_watches([WatchSpec("job-1"), WatchSpec("job-1", account="shop")], "queue")
        ids = {}
        for account, status in ((DEFAULT_ACCOUNT, 20), ("shop", 30)):
            detail = JobDetail("job-1", status, 100, "done", "https://v/1.mp4", account=account)
            event = build_event(detail, {"team": "a"}, clock.now)
            endpoints = route(event.type, None, account_view(ROUTES, account))
            assert store.record_terminal(detail, event, endpoints)
            ids[account] = event.event_id
        senders = {
            "ops": (WebhookSender(client, f"{receiver.url}/ops", [OPS_SECRET], 3.0), 2),
            "analytics": (
                WebhookSender(client, f"{receiver.url}/analytics", [ANALYTICS_SECRET], 3.0),
                2,
            ),
        }
        dispatcher = make_dispatcher(store, senders, [1.0], clock=clock)
        await dispatcher.tick()
        await attempts_done()
        await dispatcher.drain(1.0)
        assert {d["state"] for d in store.list_deliveries()} == {"delivered"}

    rec = receiver.receiver
    ops = {r.payload["data"]["account"]: r for r in rec.accepted("/ops")}
    assert set(ops) == {DEFAULT_ACCOUNT, "shop"}
    assert {account: r.webhook_id for account, r in ops.items()} == ids
    assert ids[DEFAULT_ACCOUNT] != ids["shop"]
    assert ops["shop"].payload["type"] == "lip_sync.failed"
    assert ops["shop"].payload["data"]["labels"] == {"team": "a"}
    (analytics,) = rec.accepted("/analytics")
    assert analytics.payload["data"]["account"] == "shop"
    assert analytics.webhook_id == ids["shop"]
    # The receiver verified each; so does the Standard Webhooks library, on what arrived.
    for got, secret in [*((r, OPS_SECRET) for r in ops.values()), (analytics, ANALYTICS_SECRET)]:
        assert got.verified is True
        headers = {
            "webhook-id": got.webhook_id or "",
            "webhook-timestamp": got.timestamp or "",
            "webhook-signature": got.signature or "",
        }
        assert (
            Webhook(secret).verify(got.body, headers)["data"]["account"]
            == got.payload["data"]["account"]
        )
