"""One listening address following the config across reloads (``intake.listen``,
``gateway.listen``, ``metrics.listen``): the server restarts only when what it serves on
changes, and an address that cannot be bound is one :class:`ListenError` naming its key."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from notifier import log as logs
from notifier.service.http_server import AppServer

log = logs.get_logger(component="daemon")

#: Makes the server for an address and the options it was asked to run with.
MakeServer = Callable[[tuple[str, int], Hashable], AppServer]


@dataclass(frozen=True)
class ListenSettings:
    """One ``*.listen`` key: its name (for messages), its text, and the address (None: off)."""

    key: str
    listen: str | None
    address: tuple[str, int] | None


class ListenError(Exception):
    """The configured address cannot be bound (in use, not ours, no permission)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Listener:
    """The server on one configured address. ``fallback``: a new address that cannot be
    bound leaves it serving where it was (otherwise it stops: the metrics listener)."""

    def __init__(
        self, make: MakeServer, name: str, *, stopped: str | None = None, fallback: bool = True
    ) -> None:
        """``name``: the listener in messages; ``stopped``: logged when it is turned off."""
        self._make = make
        self._name = name
        self._stopped = stopped
        self._fallback = fallback
        self.server: AppServer | None = None
        self._options: Hashable = None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def bind(self, listen: ListenSettings, options: Hashable = None) -> bool:
        """Serve on ``listen.address`` with ``options``; True when a server (re)started.
        Raises :class:`ListenError` when the address cannot be bound."""
        server = self.server
        current = (server.host, server.requested_port) if server is not None else None
        if listen.address == current and options == self._options:
            return False
        if server is not None:
            await server.stop()  # first: the new address may be the same port
            self.server = None
        if listen.address is None:
            if server is not None and self._stopped is not None:
                log.info(self._stopped)
            return False
        try:
            await self._start(listen.address, options)
        except OSError as exc:
            if self._fallback and current is not None:
                try:
                    await self._start(current, self._options)  # keep serving where it was
                except OSError:
                    log.error(f"{self._name} stopped: its old address is gone too")
            raise ListenError(
                listen.key, f"cannot listen on {listen.listen}: {exc.strerror or exc}"
            ) from exc
        return True

    async def _start(self, address: tuple[str, int], options: Hashable) -> None:
        server = self._make(address, options)
        await server.start()
        self.server = server
        self._options = options

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
