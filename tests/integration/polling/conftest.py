"""Fixtures of the polling tests: pollers against the real simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.service.http_server import AppServer
from notifier.store import Store
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY
from tests.kit.poller import Rig, poller_settings
from tests.kit.vendor import vendor_client


@pytest.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    rigs: list[tuple[Rig, AppServer]] = []

    async def make(*, secret_key: str = SECRET_KEY, qps: int = 100) -> Rig:
        sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=0, seed=7))
        server = AppServer(sim.make_app())
        await server.start()
        store = Store(tmp_path / f"state{len(rigs)}.db")
        limiter = RateLimiter(LimiterSettings(qps))
        client = vendor_client(server.url, store, limiter, secret_key=secret_key)
        poller = Poller(store, client, limiter, poller_settings(list_sweep=False))
        rig = Rig(sim, store, limiter, client, poller)
        rigs.append((rig, server))
        return rig

    yield make
    for rig, server in rigs:
        await rig.client.aclose()
        rig.store.close()
        await server.stop()
