"""Issue 18: 300 idle sockets on the metrics port took every file descriptor of the daemon.
A listener keeps at most its limit of connections open; the rest are closed as they come,
and it serves again once connections go."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from aiohttp import web

from notifier.service.http_server import AppServer


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(ConnectionError):
        return await asyncio.wait_for(reader.read(1), 10) == b""
    return True


async def test_a_listener_keeps_at_most_its_limit_of_connections() -> None:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    server = AppServer(app, max_connections=5, keepalive_timeout=60)
    await server.start()
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(8)]
    try:
        # The last three were closed at once; the first five stay open (idle, unanswered).
        for reader, _writer in idle[5:]:
            assert await _closed_by_peer(reader)
        assert server.refused == 3
        for _reader, writer in idle[:5]:
            assert not writer.is_closing()
        # While five are open, a request cannot get in; once they go, it is served.
        for _reader, writer in idle[:5]:
            writer.close()
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(100):  # the server notices the closes as its loop gets to them
                try:
                    response = await client.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert response.text == "ok"
    finally:
        for _reader, writer in idle:
            writer.close()
        await server.stop()
