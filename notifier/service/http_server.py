"""Run an aiohttp application on 127.0.0.1, in this loop or on a background thread.

The simulator, the demo receiver and the tests all need "a real HTTP server on loopback
that I can start, query and stop"; this is that, once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

from notifier import log as logs

log = logs.get_logger(component="http")

T = TypeVar("T")


#: Open connections one listener keeps; more are closed as they come. Idle ones are closed
#: by each listener's keep-alive timeout. Without a cap, a few hundred idle sockets took
#: every file descriptor of the process (polling and delivery then failed too).
MAX_CONNECTIONS = 256
#: A listener that turns connections away says so at most this often.
REFUSED_REPORT_EVERY = 60.0


class AppServer:
    """An aiohttp app bound to ``host:port`` (port 0 picks a free one) in the running loop."""

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = MAX_CONNECTIONS,
        **runner_options: Any,
    ) -> None:
        """``runner_options``: for aiohttp's AppRunner (e.g. ``keepalive_timeout``)."""
        self.app = app
        self.max_connections = max_connections
        #: Connections closed at once because ``max_connections`` were open.
        self.refused = 0
        self._refused_lines = logs.LineBudget(REFUSED_REPORT_EVERY)
        self._runner_options = runner_options
        self.host = host
        self._want_port = port
        #: The port asked for (0: any free one); ``port`` is the one bound.
        self.requested_port = port
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, **self._runner_options
        )
        await self._runner.setup()
        self._cap(self._runner.server)
        site = web.TCPSite(self._runner, self.host, self._want_port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self.stop()  # nothing half-started stays behind
            raise
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._want_port

    def _cap(self, server: web.Server | None) -> None:
        """Close a connection as it opens while ``max_connections`` are open."""
        if server is None:
            return
        register = server.connection_made

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            if len(server.connections) >= self.max_connections:
                self.refused += 1
                # Registered and closed a moment later, once the handler has started as for
                # any connection (closed at once, its start would find itself torn down).
                register(handler, transport)
                asyncio.get_running_loop().call_soon(transport.abort)
                if self._refused_lines.take() is not None:
                    log.warning(
                        "listener at its connection limit; new connections are closed",
                        url=self.url,
                        limit=self.max_connections,
                        refused=self.refused,
                    )
                return
            register(handler, transport)

        server.connection_made = connection_made  # type: ignore[method-assign]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AppServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ServerThread:
    """An :class:`AppServer` on its own event loop in a daemon thread.

    Use as a context manager; ``call`` runs a coroutine on the server's loop and waits.
    """

    def __init__(
        self,
        app_factory: Callable[[], web.Application],
        host: str = "127.0.0.1",
        port: int = 0,
        **runner_options: Any,
    ) -> None:
        self._app_factory = app_factory
        self._runner_options = runner_options
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: AppServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "server not started"
        return self.server.url

    @property
    def port(self) -> int:
        assert self.server is not None, "server not started"
        return self.server.port

    def start(self) -> ServerThread:
        self._thread.start()

        async def _start() -> AppServer:
            server = AppServer(self._app_factory(), self._host, self._port, **self._runner_options)
            await server.start()
            return server

        self.server = self.call(_start())
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
            self.server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
