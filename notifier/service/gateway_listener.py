"""The gateway's listener (``gateway.listen``), following the config across reloads."""

from __future__ import annotations

from notifier import log as logs
from notifier.config import Config
from notifier.gateway.door import Gateway
from notifier.gateway.server import GatewayServer, Observer
from notifier.service.http_server import AppServer
from notifier.service.intake_listener import ListenError

log = logs.get_logger(component="gateway")


class GatewayListener:
    """Serves one :class:`Gateway` (its settings follow reloads at once); the server is
    restarted only when the address changes."""

    def __init__(self, gateway: Gateway, observer: Observer | None = None) -> None:
        self.gateway = gateway
        self.http = GatewayServer(gateway, observer=observer)
        self.server: AppServer | None = None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def apply(self, config: Config) -> None:
        """Match ``config``. :class:`ListenError` when the address cannot be bound; a
        listener that was running then keeps running where it was."""
        self.gateway.configure(config)
        self.http.client_timeout = config.intake.client_timeout
        address = config.gateway.address()
        server = self.server
        current = (server.host, server.requested_port) if server is not None else None
        if address == current:
            return
        if server is not None:
            await server.stop()  # first: the new address may be the same port
            self.server = None
        if address is None:
            log.info("gateway stopped")
            return
        try:
            await self._start(address)
        except OSError as exc:
            if current is not None:
                try:
                    await self._start(current)  # keep serving where it was
                except OSError:
                    log.error("gateway stopped: its old address is gone too")
            raise ListenError(
                f"cannot listen on {config.gateway.listen}: {exc.strerror or exc}"
            ) from exc
        assert self.server is not None
        log.info("gateway listening", url=self.server.url, advertise=self.gateway.advertise)

    async def _start(self, address: tuple[str, int]) -> None:
        server = AppServer(self.http.app(), address[0], address[1], **self.http.runner_options())
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        await self.gateway.aclose()
