"""A token fetched under the vendor lease is stored only while the fetching node still holds
it, and only over an older token (issue 19, item 10). Node A's token request reaches the
real simulator (a token is issued) but its answer is held up, as for a node frozen
mid-fetch; meanwhile node B takes the lease, waits out A's token lock (the "fetching anyway"
path after TOKEN_LOCK_PATIENCE), fetches and stores its own token, which revokes A's. When
A's answer finally comes, A must not write its revoked token over B's. Two stores (two
connections, as two processes have) on both backends, real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from notifier.polling import vendor as vendor_module
from notifier.polling.lease import LeaseKeeper, LeaseSettings
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import DETAIL_PATH, VendorClient
from notifier.store import Store
from tests.kit import Simulator, StoreFactory
from tests.kit.vendor import vendor_client

TTL = 30.0


class HeldAnswers(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator; a token answer is handed back only once ``go`` is set
    (the request itself went out: the vendor issued the token)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent = asyncio.Event()
        self.go = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path.endswith("/access_token"):
            await response.aread()
            self.sent.set()
            await self.go.wait()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def client(
    store: Store, simulator: Simulator, keeper: LeaseKeeper, transport: httpx.AsyncBaseTransport
) -> VendorClient:
    return vendor_client(
        simulator.url, store, RateLimiter(LimiterSettings(100)), lease=keeper, transport=transport
    )


@pytest.mark.parametrize("retaken", [False, True], ids=["standby", "holder-again"])
async def test_a_fetch_that_outlived_its_lease_does_not_overwrite_the_newer_token(
    make_store: StoreFactory,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    retaken: bool,
) -> None:
    """``retaken``: before A's answer comes, B has let the lease go and A holds it again (a
    new tenure): A's token is still the older one, and newest wins."""
    monkeypatch.setattr(vendor_module, "TOKEN_LOCK_PATIENCE", 0.2)
    store_a, lease_a, store_b, lease_b = (make_store() for _ in range(4))
    keeper_a = LeaseKeeper(lease_a, "node-a", LeaseSettings(TTL))
    # sole: B's first take does not wait for A's lease to run out (as if it just had).
    keeper_b = LeaseKeeper(lease_b, "node-b", LeaseSettings(TTL), sole=True)
    held = HeldAnswers()
    vendor_a = client(store_a, simulator, keeper_a, held)
    vendor_b = client(store_b, simulator, keeper_b, httpx.AsyncHTTPTransport())
    account = f"{simulator.url}#test-app"
    try:
        await keeper_a.renew()
        assert keeper_a.may_call()
        fetch_a = asyncio.create_task(vendor_a.token())
        await asyncio.wait_for(held.sent.wait(), 10)  # issued at the vendor; A is "frozen"

        await keeper_b.renew()  # A's lease ran out meanwhile; B holds it now
        assert keeper_b.may_call()
        # A still holds the token lock: B fetches anyway after the patience, and stores it.
        token_b = await asyncio.wait_for(vendor_b.token(), 10)
        assert simulator.sim.stats()["tokens_issued"] == 2
        if retaken:
            await keeper_b.release()  # free MARGIN after its gate shut
            while not keeper_a.may_call():
                await asyncio.sleep(0.05)
                await keeper_a.renew()

        held.go.set()  # A thaws: its answer (a token the vendor revoked since) arrives
        await asyncio.wait_for(asyncio.gather(fetch_a, return_exceptions=True), 10)
        stored = store_a.get_token(account)
        assert stored is not None and stored[0] == token_b
        # And it is the live one: the holder's call with it is not refused as invalid.
        holder = vendor_a if retaken else vendor_b
        code, *_ = await holder._authorized("detail", "GET", DETAIL_PATH)
        assert code != vendor_module.CODE_TOKEN_INVALID
    finally:
        held.go.set()
        await vendor_a.aclose()
        await vendor_b.aclose()


async def test_a_lone_node_still_stores_its_token(
    make_store: StoreFactory, simulator: Simulator
) -> None:
    """The fenced save on the single-node path (SQLite's sole daemon, and PostgreSQL)."""
    store, lease_store = make_store(), make_store()
    keeper = LeaseKeeper(lease_store, "node-a", LeaseSettings(TTL), sole=True)
    vendor = client(store, simulator, keeper, httpx.AsyncHTTPTransport())
    try:
        await keeper.renew()
        token = await vendor.token()
        stored = store.get_token(f"{simulator.url}#test-app")
        assert stored is not None and stored[0] == token
    finally:
        await vendor.aclose()
