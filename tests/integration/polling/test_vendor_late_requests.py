"""Issue 19, item 8: a request the client gave up on could be retransmitted by the kernel for
minutes and reach the vendor (or a receiver) long after, during the next lease holder's
tenure or in a second already full. The sockets now carry TCP_USER_TIMEOUT, and a vendor call
that got no answer keeps counting at the limiter until its request surely cannot arrive."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from notifier.delivery.senders._http import WEBHOOK_USER_TIMEOUT, http_client
from notifier.polling.ratelimit import (
    LATE_ARRIVAL,
    VENDOR_USER_TIMEOUT,
    LimiterSettings,
    RateLimiter,
)
from notifier.polling.vendor import VendorError
from notifier.service.http_server import AppServer
from notifier.store import Store
from tests.kit.vendor import vendor_client

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's"
)


@pytest.fixture
async def stalling() -> AsyncIterator[AppServer]:
    """A real HTTP server that reads every request and never answers."""
    never = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await request.read()
        await never.wait()  # until the test ends
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stall)
    server = AppServer(app)
    await server.start()
    yield server
    never.set()
    await server.stop()


async def _connected(client: httpx.AsyncClient) -> None:
    """Until the pool holds a connection whose socket is open: a connection enters the
    pool before its TCP connect finishes."""
    pool: Any = client._transport._pool  # type: ignore[attr-defined]
    while not pool.connections or any(c._connection is None for c in pool.connections):
        await asyncio.sleep(0.01)


def user_timeouts(client: httpx.AsyncClient) -> list[int]:
    """TCP_USER_TIMEOUT (ms) of every socket in the client's pool, read from the kernel."""
    pool: Any = client._transport._pool  # type: ignore[attr-defined]
    found = []
    for conn in pool.connections:
        stream = conn._connection._network_stream
        sock = stream.get_extra_info("socket")
        found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
    return found


async def test_vendor_sockets_carry_the_user_timeout(tmp_path: Path, stalling: AppServer) -> None:
    store = Store(tmp_path / "state.db")
    vendor = vendor_client(stalling.url, store, timeout=0.3)
    try:
        call = asyncio.create_task(vendor.token())
        # While the request waits for its answer, its connection is in the pool.
        await _connected(vendor._http)
        assert user_timeouts(vendor._http) == [int(VENDOR_USER_TIMEOUT * 1000)]
        with pytest.raises(VendorError):
            await call
    finally:
        await vendor.aclose()
        store.close()


async def test_sender_sockets_carry_the_user_timeout(stalling: AppServer) -> None:
    client = http_client(2, verify=True, headers={"user-agent": "t"})
    try:
        post = asyncio.create_task(client.post(f"{stalling.url}/hook", content=b"{}"))
        await _connected(client)
        assert user_timeouts(client) == [int(WEBHOOK_USER_TIMEOUT * 1000)]
        post.cancel()
    finally:
        await client.aclose()


async def test_a_timed_out_call_keeps_its_slot_until_it_cannot_arrive(
    tmp_path: Path, stalling: AppServer
) -> None:
    """qps 1: after an answered call the next goes one second after the answer; after one
    that timed out, the request may still arrive up to LATE_ARRIVAL later, so the next call
    waits that much longer (a lower bound: a slow machine only waits more)."""
    limiter = RateLimiter(LimiterSettings(1))
    store = Store(tmp_path / "state.db")
    vendor = vendor_client(stalling.url, store, limiter, timeout=0.2)
    try:
        with pytest.raises(VendorError, match="timed out"):
            await vendor.token()
        ended = time.monotonic()
        await limiter.acquire()
        assert time.monotonic() - ended >= 1.0 + LATE_ARRIVAL - 0.1
    finally:
        await vendor.aclose()
        store.close()
