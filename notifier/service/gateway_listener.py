"""The gateway's listener (``gateway.listen``), following the config across reloads."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from notifier import log as logs
from notifier.gateway.door import Gateway, GatewaySettings
from notifier.gateway.server import GatewayServer, Observer
from notifier.service.http_server import AppServer
from notifier.service.listener import Listener, ListenSettings

log = logs.get_logger(component="gateway")


@dataclass(frozen=True)
class GatewayListenerSettings:
    """The gateway's behaviour, its address, and ``intake.client_timeout`` (its clients
    are held to the intake API's)."""

    gateway: GatewaySettings
    listen: ListenSettings
    client_timeout: float


class GatewayListener:
    """Serves one :class:`Gateway` (its settings follow reloads at once); the server is
    restarted only when the address changes."""

    def __init__(self, gateway: Gateway, observer: Observer | None = None) -> None:
        self.gateway = gateway
        self.http = GatewayServer(gateway, observer=observer)
        self._listener = Listener(self._server, "gateway", stopped="gateway stopped")

    @property
    def server(self) -> AppServer | None:
        return self._listener.server

    @property
    def url(self) -> str | None:
        return self._listener.url

    async def configure(self, settings: GatewayListenerSettings) -> None:
        """Match ``settings``. :class:`ListenError` when the address cannot be bound; a
        listener that was running then keeps running where it was."""
        self.gateway.configure(settings.gateway)
        self.http.client_timeout = settings.client_timeout
        if await self._listener.bind(settings.listen):
            log.info("gateway listening", url=self.url, advertise=self.gateway.advertise)

    def _server(self, address: tuple[str, int], _options: Hashable) -> AppServer:
        return AppServer(self.http.app(), address[0], address[1], **self.http.runner_options())

    async def stop(self) -> None:
        await self._listener.stop()
        await self.gateway.aclose()
