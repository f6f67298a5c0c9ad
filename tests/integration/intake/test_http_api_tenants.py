"""Issue 22, item 4: tenant isolation on the intake API, over real HTTP on a real store. A
token limited to some accounts (``intake.tokens[].accounts``) adds, reads and deletes only
those accounts' watches — another account's watch is the 404 of a watch that never existed —
and ``GET /v1/events`` pages through their events only: no page, no cursor shows or skips
another account's event. A token without accounts sees everything, as before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from notifier.intake.http_api import IntakeApi
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.watchspec import AccountRule
from tests.kit import StoreFactory
from tests.kit.intake_api import sqlite_backend  # noqa: F401
from tests.kit.store import record_account_events

ALL = "tok-all-5e4d3c2b1a0f9e8d"
SHOP = "tok-shop-1a2b3c4d5e6f7a8b"
MEDIA = "tok-media-9f8e7d6c5b4a3928"
BOTH = "tok-both-0c1d2e3f4a5b6c7d"
RULE = AccountRule.of(["shop", "media", "ads"], None)


@dataclass
class Tenants:
    url: str
    store: Store

    def client(self, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(name="tenants")
def tenants_fixture(make_store: StoreFactory) -> Iterator[Tenants]:
    store = make_store()
    tokens = [ALL, (SHOP, ["shop"]), (MEDIA, ["media"]), (BOTH, ["shop", "media"])]
    intake = IntakeApi(store, tokens, ["ops"], accounts=RULE)
    with ServerThread(intake.app, **intake.runner_options()) as server:
        yield Tenants(server.url, store)


def _add(tenants: Tenants, token: str, body: dict[str, object]) -> httpx.Response:
    with tenants.client(token) as client:
        return client.post("/v1/watches", json=body)


def test_a_limited_token_adds_only_its_accounts_watches(tenants: Tenants) -> None:
    # Its one account is its default; another is as unknown as one never configured.
    added = _add(tenants, SHOP, {"ids": ["j1"]})
    assert added.status_code == 202 and added.json()["account"] == "shop"
    refused = _add(tenants, SHOP, {"ids": ["j2"], "account": "media"})
    assert refused.status_code == 400
    assert refused.json()["problems"] == [
        {"loc": ["account"], "msg": "unknown account 'media' (configured: shop)"}
    ]
    # Several accounts and none of them the default: it must name one (its own listed).
    need = _add(tenants, BOTH, {"ids": ["j3"]})
    assert need.status_code == 400
    assert need.json()["error"] == (
        "account: name the account (several configured and none marked default: shop, media)"
    )
    assert _add(tenants, BOTH, {"ids": ["j3"], "account": "media"}).status_code == 202
    # A token for every account names one too (none is marked default).
    everyone = _add(tenants, ALL, {"ids": ["j4"]}).json()
    assert everyone["error"] == (
        "account: name the account (several configured and none marked default: shop, media, ads)"
    )
    assert _add(tenants, ALL, {"ids": ["j4"], "account": "ads"}).status_code == 202
    watched = {(w["account"], w["job_id"]) for w in tenants.store.list_watches()}
    assert watched == {("shop", "j1"), ("media", "j3"), ("ads", "j4")}


def test_another_accounts_watch_is_a_404_as_if_it_did_not_exist(tenants: Tenants) -> None:
    assert _add(tenants, ALL, {"ids": ["j1"], "account": "media", "labels": {"t": "m"}}).is_success
    assert _add(tenants, ALL, {"ids": ["both"], "account": "media"}).is_success
    assert _add(tenants, ALL, {"ids": ["both"], "account": "shop", "labels": {"t": "s"}}).is_success
    with tenants.client(SHOP) as shop:
        never = shop.get("/v1/watches/never")
        for path in ("/v1/watches/j1", "/v1/watches/j1?account=media"):
            hidden = shop.get(path)
            assert hidden.status_code == 404
            assert hidden.json() == {"error": "no watch for job j1"}
            assert never.json() == {"error": "no watch for job never"}
            assert dict(hidden.headers).keys() == dict(never.headers).keys()
        # The same id on its own account is its own watch.
        own = shop.get("/v1/watches/both")
        assert own.status_code == 200
        assert (own.json()["account"], own.json()["labels"]) == ("shop", {"t": "s"})
        assert shop.get("/v1/watches/both?account=media").status_code == 404
        # Deleting another account's watch is the same 404, and deletes nothing.
        for path in (
            "/v1/watches/j1",
            "/v1/watches/j1?account=media",
            "/v1/watches/both?account=media",
        ):
            gone = shop.delete(path)
            assert gone.status_code == 404
            assert gone.json()["error"].startswith("no watch for job ")
    assert tenants.store.watch_summary("j1", account="media") is not None
    assert tenants.store.watch_summary("both", account="media") is not None
    with tenants.client(MEDIA) as media:
        assert media.get("/v1/watches/j1").json()["account"] == "media"
        assert media.delete("/v1/watches/both").status_code == 204
    assert tenants.store.watch_summary("both", account="media") is None
    assert tenants.store.watch_summary("both", account="shop") is not None
    with tenants.client(ALL) as everyone:
        # A token for every account names the account when several have none marked.
        need = everyone.get("/v1/watches/j1")
        assert need.status_code == 400 and need.json()["error"].startswith("account: name the")
        assert everyone.get("/v1/watches/j1?account=media").json()["labels"] == {"t": "m"}
        # Any well-formed name: a removed account's watches stay readable.
        assert everyone.get("/v1/watches/j1?account=gone").status_code == 404
        bad = everyone.get("/v1/watches/j1?account=Media")
        assert bad.status_code == 400 and bad.json()["error"].startswith("account: invalid")


def test_the_document_lists_only_the_tokens_accounts(tenants: Tenants) -> None:
    with tenants.client(SHOP) as shop, tenants.client(BOTH) as both:
        mine = shop.get("/openapi.json").json()
        theirs = both.get("/openapi.json").json()

    def body(document: dict[str, Any]) -> dict[str, Any]:
        post = document["paths"]["/v1/watches"]["post"]
        schema: dict[str, Any] = post["requestBody"]["content"]["application/json"]["schema"]
        return schema

    # Shop's one account is its default: account may be left out.
    assert body(mine)["properties"]["account"]["enum"] == ["shop", None]
    assert "account" not in body(mine)["required"]
    # Two accounts and neither the default: it must be named, in the body and the query.
    assert body(theirs)["properties"]["account"]["enum"] == ["shop", "media"]
    assert "account" in body(theirs)["required"]
    params = theirs["paths"]["/v1/watches/{id}"]["parameters"]
    assert [p["required"] for p in params if p["name"] == "account"] == [True]


def _pages(client: httpx.Client, limit: int) -> list[str]:
    """Every event a token pages through, following ``next`` until a page is empty."""
    seen: list[str] = []
    after = ""
    while True:
        page = client.get("/v1/events", params={"after": after, "limit": limit})
        assert page.status_code == 200, page.text
        events = [e["id"] for e in page.json()["events"]]
        if not events:
            assert page.json()["next"] == (after or None)
            return seen
        seen += events
        after = page.json()["next"]


def test_a_limited_token_pages_through_its_accounts_events_only(tenants: Tenants) -> None:
    ids, _recorded = record_account_events(tenants.store, 60)  # 240: many pages of each size
    with tenants.client(SHOP) as shop, tenants.client(MEDIA) as media:
        for limit in (1, 7, 100):
            assert _pages(shop, limit) == ids["shop"]
            assert _pages(media, limit) == ids["media"]
        # Another account's event is no cursor: the 404 of one never recorded.
        other = shop.get("/v1/events", params={"after": ids["media"][3]})
        never = shop.get("/v1/events", params={"after": "evt_never"})
        assert other.status_code == never.status_code == 404
        assert other.json()["error"] == never.json()["error"].replace("evt_never", ids["media"][3])
        assert shop.get("/v1/events", params={"after": ids[None][0]}).status_code == 404
        # Its own event is a cursor, and the page after it is its own events after it.
        page = shop.get("/v1/events", params={"after": ids["shop"][10], "limit": 5}).json()
        assert [e["id"] for e in page["events"]] == ids["shop"][11:16]
    with tenants.client(BOTH) as both:
        mine = set(ids["shop"]) | set(ids["media"])
        seen = _pages(both, 9)
        assert set(seen) == mine and len(seen) == len(mine)
    with tenants.client(ALL) as everyone:
        assert len(_pages(everyone, 50)) == 240  # every event, the daemon's own included
