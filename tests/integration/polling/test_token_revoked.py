"""Another program fetching a token with our app_id revokes ours (issue 17, part 12).

The vendor keeps one live token per app_id. The client, against the real simulator on
127.0.0.1 with a fake clock shared by both, must tell such a revocation (10400 on a token good
for a while yet) from a token that ran out: warn once per revocation, count it, and feed the
operational events, which call the vendor failing when it goes on. "Another program" is a
plain HTTP token request, as any application of the account makes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from notifier.delivery.operational import (
    TOKEN_REVOCATION_WINDOW,
    TOKEN_REVOCATIONS_FAILING,
    TOKEN_REVOKED_CAUSE,
    AlertSettings,
    OperationalEvents,
    Thresholds,
)
from notifier.models import DEFAULT_ACCOUNT
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import (
    TOKEN_REFRESH_MARGIN,
    TOKEN_REVOKED_HINT,
    TOKEN_REVOKED_MESSAGE,
    VendorClient,
)
from notifier.service.http_server import AppServer
from notifier.store import Store
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, T0, FakeClock
from tests.kit.vendor import vendor_client

APP_ID = "test-app"
TTL = 3600.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Account:
    """The simulator, our client on a state file, and a way to be "another program"."""

    def __init__(self, sim: VendorSimulator, url: str, store: Store, clock: FakeClock) -> None:
        self.sim = sim
        self.url = url
        self.store = store
        self.clock = clock
        self.client = self.make_client(store)
        #: Set to move the clock as a detail call arrives (a call long on its way).
        self.arrive_late_by = 0.0

    def make_client(self, store: Store) -> VendorClient:
        return vendor_client(
            self.url, store, RateLimiter(LimiterSettings(1000), cooldown=0.1), clock=self.clock
        )

    async def other_program_fetches_a_token(self) -> str:
        async with httpx.AsyncClient(base_url=self.url) as http:
            answer = await http.post(
                "/open/v1/access_token", json={"app_id": APP_ID, "secret_key": SECRET_KEY}
            )
        token = answer.json()["data"]["access_token"]
        assert isinstance(token, str)
        return token

    def codes(self) -> dict[str, int]:
        codes: dict[str, int] = self.sim.stats()["codes"]
        return codes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def account(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Account]:
    sim = VendorSimulator(
        SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=0, seed=7, token_ttl=TTL),
        clock=clock,
    )
    sim.add_job("job-1", queue_s=0, run_s=0)
    app = sim.make_app()
    holder: list[Account] = []

    @web.middleware
    async def late_arrival(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/detail") and holder[0].arrive_late_by:
            clock.advance(holder[0].arrive_late_by)
            holder[0].arrive_late_by = 0.0
        return await handler(request)

    app.middlewares.append(late_arrival)
    store = Store(tmp_path / "s.db")
    async with AppServer(app) as server:
        holder.append(Account(sim, server.url, store, clock))
        yield holder[0]
        await holder[0].client.aclose()
    store.close()


def revocation_warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == TOKEN_REVOKED_MESSAGE]


async def test_a_revocation_by_another_fetcher_is_warned_once_and_counted(
    account: Account,
) -> None:
    client = account.client
    revoked: list[int] = []
    client.on_token_revoked = lambda: revoked.append(client.token_revocations)
    await client.detail("job-1")
    ours = client.secrets()[-1]

    with capture_logs() as logs:
        theirs = await account.other_program_fetches_a_token()
        # Many calls on the revoked token at once: one revocation, one warning.
        details = await asyncio.gather(*(client.detail("job-1") for _ in range(10)))
        assert {d.status for d in details} == {20}
        assert len(revocation_warnings(logs)) == 1
        again = await account.other_program_fetches_a_token()
        await client.detail("job-1")

    warnings = revocation_warnings(logs)
    assert len(warnings) == 2
    assert account.codes()["10400"] >= 2
    for warning in warnings:
        assert warning["log_level"] == "warning"
        assert warning["hint"] == TOKEN_REVOKED_HINT
        assert "gateway" in warning["hint"] and "one daemon per account" in warning["hint"]
        assert warning["token_seconds_left"] > TOKEN_REFRESH_MARGIN
        text = repr(warning)
        for token in (ours, theirs, again, *client.secrets()):
            assert token not in text
    assert [w["revocations"] for w in warnings] == [1, 2]
    assert client.token_revocations == 2
    assert revoked == [1, 2]


async def test_a_token_that_ran_out_on_its_way_is_refreshed_without_a_warning(
    account: Account, clock: FakeClock
) -> None:
    client = account.client
    await client.detail("job-1")
    expire_at = T0 + TTL
    # Still outside the refresh margin when sent; the vendor sees it after its expiry.
    clock.now = expire_at - TOKEN_REFRESH_MARGIN - 1
    account.arrive_late_by = TOKEN_REFRESH_MARGIN + 1

    with capture_logs() as logs:
        assert (await client.detail("job-1")).status == 20

    assert account.codes()["10400"] == 1  # it was rejected, and refreshed
    assert client.token_refreshes == 2
    assert revocation_warnings(logs) == []
    assert client.token_revocations == 0


async def test_a_token_replaced_by_a_process_sharing_the_state_is_no_revocation(
    account: Account, tmp_path: Path
) -> None:
    """A node or CLI command on our state that fetched a token stored it: we take that one
    (no fetch of ours, which would revoke it in turn), and no one is warned about ourselves."""
    client = account.client
    await client.detail("job-1")
    sibling_store = Store(tmp_path / "s.db")
    sibling = account.make_client(sibling_store)
    try:
        # The sibling's token was near its end by its clock: it fetches and stores a new one.
        sibling_store.save_token(f"{account.url}#{APP_ID}", "old", account.clock() + 1)
        await sibling.detail("job-1")
        with capture_logs() as logs:
            assert (await client.detail("job-1")).status == 20
    finally:
        await sibling.aclose()
        sibling_store.close()
    assert revocation_warnings(logs) == []
    assert client.token_revocations == 0
    assert account.sim.stats()["tokens_issued"] == 2


async def test_revocations_that_go_on_make_the_vendor_failing_until_they_stop(
    account: Account, clock: FakeClock
) -> None:
    store = account.store
    subscribed = (("ops", ("vendor.failing", "vendor.recovered"), None),)
    ops = OperationalEvents(store, AlertSettings(subscribed, Thresholds()), clock=clock)
    client = account.client
    client.observer = partial(ops.on_vendor_call, DEFAULT_ACCOUNT)
    client.on_token_revoked = partial(ops.on_token_revoked, DEFAULT_ACCOUNT)

    def events() -> list[dict[str, Any]]:
        return [e for e in store.events_after(None, 100) or [] if e["type"].startswith("vendor")]

    await client.detail("job-1")
    for _ in range(TOKEN_REVOCATIONS_FAILING - 1):
        clock.advance(60)
        await account.other_program_fetches_a_token()
        await client.detail("job-1")
    assert events() == []  # a revocation now and then is no failure
    assert ops.state.vendor().failing is False

    clock.advance(60)
    await account.other_program_fetches_a_token()
    await client.detail("job-1")
    [failing] = events()
    assert failing["type"] == "vendor.failing"
    assert failing["data"]["error"].startswith(TOKEN_REVOKED_CAUSE)
    assert "gateway" in failing["data"]["error"]
    assert failing["data"]["failures"] == TOKEN_REVOCATIONS_FAILING
    assert failing["data"]["since"] == "2023-11-14T22:14:20Z"  # the first of the three

    # Another one, and calls that succeed in between: still failing, told once.
    clock.advance(60)
    await account.other_program_fetches_a_token()
    await client.detail("job-1")
    clock.advance(TOKEN_REVOCATION_WINDOW - 1)
    await client.detail("job-1")
    assert len(events()) == 1
    assert ops.state.vendor().failing is True

    # A whole window without a revocation, and a call that succeeds: recovered.
    clock.advance(1)
    await client.detail("job-1")
    [_, recovered] = events()
    assert recovered["type"] == "vendor.recovered"
    assert recovered["data"]["last_error"].startswith(TOKEN_REVOKED_CAUSE)
    assert recovered["data"]["failures"] == TOKEN_REVOCATIONS_FAILING + 1
    assert ops.state.vendor().failing is False
    assert client.token_revocations == TOKEN_REVOCATIONS_FAILING + 1
