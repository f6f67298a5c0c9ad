"""The vendor token is fetched once across processes sharing a state: issuing a token revokes
the previous one, so two nodes (or a node and a CLI command) that both found no token must not
both fetch one. Two stores (separate connections: two sessions on PostgreSQL, two open files
on SQLite, exactly as two processes have) and two vendor clients, each on its own thread and
event loop, against the real simulator; on both backends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from notifier.polling import vendor as vendor_module
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import VendorClient
from notifier.store import Store
from tests.kit import Simulator, StoreFactory
from tests.kit.vendor import vendor_client

#: The token endpoint answers this late: both nodes ask within that time unless one waits.
TOKEN_DELAY = 1.0


class SlowTokens(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator; token requests are held up a while first (a slow vendor)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_token"):
            await asyncio.sleep(TOKEN_DELAY)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def client(store: Store, simulator: Simulator) -> VendorClient:
    return vendor_client(
        simulator.url, store, RateLimiter(LimiterSettings(100)), transport=SlowTokens()
    )


def at_once(*stores: Store, simulator: Simulator) -> list[str | BaseException]:
    """Each store's node asks for a token at the same moment, on its own thread and loop."""
    start = threading.Barrier(len(stores))
    results: list[str | BaseException] = [RuntimeError("did not run")] * len(stores)

    def node(index: int, store: Store) -> None:
        async def main() -> str:
            vendor = client(store, simulator)
            try:
                start.wait(10)
                await vendor.token()
                # A call with it (a revoked one is refreshed here, once).
                code, _msg, _data, _ = await vendor._authorized(
                    "detail", "GET", vendor_module.DETAIL_PATH
                )
                assert code != vendor_module.CODE_TOKEN_INVALID
                return await vendor.token()  # the token the call went with
            finally:
                await vendor.aclose()

        try:
            results[index] = asyncio.run(main())
        except BaseException as exc:  # reported by the test below
            results[index] = exc

    threads = [threading.Thread(target=node, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def two_nodes(make_store: StoreFactory) -> Iterator[tuple[Store, Store]]:
    yield make_store(), make_store()


def test_two_nodes_needing_a_token_at_once_cause_one_issue(
    two_nodes: tuple[Store, Store], simulator: Simulator
) -> None:
    first, second = at_once(*two_nodes, simulator=simulator)
    assert isinstance(first, str) and isinstance(second, str), (first, second)
    assert first == second
    assert simulator.sim.stats()["tokens_issued"] == 1
    # The lock is free again: a later refresh (the token revoked) is not held up.
    simulator.sim.revoke_token()
    a, b = at_once(*two_nodes, simulator=simulator)
    assert a == b != first
    assert simulator.sim.stats()["tokens_issued"] == 2


def test_the_token_lock_is_one_holder_at_a_time(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    assert a.try_token_lock()
    assert not b.try_token_lock()
    assert not a.try_token_lock()  # one holder per store too (two clients in one process)
    a.release_token_lock()
    assert b.try_token_lock()
    b.close()  # a store closed while holding it frees it
    assert a.try_token_lock()
    a.release_token_lock()
