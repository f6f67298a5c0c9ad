"""Issue 18: a vendor that trickles its answer a byte at a time held a place at the limiter
for as long as it liked (httpx's timeout is per read). The whole answer must come within
the client's timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from notifier.polling.vendor import VendorError
from notifier.service.http_server import AppServer
from notifier.store import Store
from tests.kit.vendor import vendor_client


async def test_an_answer_trickled_past_the_timeout_is_given_up(tmp_path: Path) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(300):  # 60 s of one byte every 0.2 s; each read is quick
            await response.write(b" ")
            await asyncio.sleep(0.2)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", trickle)
    server = AppServer(app)
    await server.start()
    store = Store(tmp_path / "state.db")
    vendor = vendor_client(server.url, store, timeout=1.0)
    started = time.monotonic()
    try:
        try:
            await vendor.token()
        except VendorError as exc:
            assert "timed out" in str(exc)
        else:
            raise AssertionError("a trickled answer was taken")
        # A lower bound is not what is checked: the call ended long before the 60 s trickle.
        assert time.monotonic() - started < 30
    finally:
        await vendor.aclose()
        store.close()
        await server.stop()
