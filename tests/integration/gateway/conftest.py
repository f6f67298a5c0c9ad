"""The gateway tests' fixture (the door: see tests/kit/gateway.py), on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from notifier.gateway.door import Gateway
from notifier.gateway.server import GatewayServer
from notifier.models import JobDetail
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.service.http_server import AppServer
from notifier.service.settings import gateway_settings
from tests.kit import Simulator, StoreFactory
from tests.kit.gateway import Door, config_for
from tests.kit.poller import poller_settings
from tests.kit.vendor import vendor_client


@pytest.fixture
async def door(
    tmp_path: Path, simulator: Simulator, make_store: StoreFactory
) -> AsyncIterator[Door]:
    store = make_store()
    limiter = RateLimiter(LimiterSettings(10))
    vendor = vendor_client(simulator.url, store, limiter)
    poller = Poller(store, vendor, limiter, poller_settings(PollingSettings(5.0, 60.0, 3600.0), []))

    def observe(detail: JobDetail) -> None:
        watch = store.get_watch(detail.id, kind=detail.kind)
        assert watch is not None
        poller.observe(watch, detail)

    gateway = Gateway(store, lambda: vendor, observe=observe, holder=lambda: None)
    gateway.configure(gateway_settings(config_for(tmp_path, simulator)))
    server = AppServer(GatewayServer(gateway).app())
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield Door(gateway, store, vendor, http, simulator, poller)
    await server.stop()
    await gateway.aclose()
    await vendor.aclose()
