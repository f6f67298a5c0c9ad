"""The daemon's outgoing HTTP clients across reloads: one TLS context for all of them, the
sender pool (a sender per endpoint, made from the endpoint-type table), and the vendor client
(another account or address is another client).

A client a reload dropped is closed once its last requests surely ended: attempts and calls
in flight finish on the client they started on.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Sequence

import httpx

from notifier import __version__
from notifier.delivery.dispatcher import Lanes
from notifier.delivery.senders import SENDERS, EndpointSettings, Sender
from notifier.delivery.senders._http import http_client
from notifier.polling.vendor import VendorClient, VendorSettings

#: A client replaced by a reload is closed once its last calls surely ended.
OLD_CLIENT_CLOSE_DELAY = 30.0


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One TLS context (httpx's default: certifi's CA bundle, or SSL_CERT_FILE/DIR) for
    every client of the process: each context loads the bundle again (~60 ms of CPU),
    and the daemon makes one client per sender, at start and on each reload."""
    return httpx.create_ssl_context()


def close_later(close: Callable[[], Awaitable[object]]) -> None:
    """Close a dropped client after OLD_CLIENT_CLOSE_DELAY (on the running loop)."""
    asyncio.get_running_loop().call_later(
        OLD_CLIENT_CLOSE_DELAY, lambda: asyncio.ensure_future(close())
    )


def sender_client(connections: int) -> httpx.AsyncClient:
    """One connection pool per sender, sized to its lane: httpcore's pool costs grow
    with its size, and one endpoint's connections never wait behind another's."""
    return http_client(
        connections,
        verify=shared_tls(),
        headers={"user-agent": f"chanjing-notifier/{__version__}"},
    )


class SenderPool:
    """The senders of the configured endpoints: one whose settings did not change is kept
    (with its connections), and endpoints with one :attr:`SenderType.key` share one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        """``clock``: what webhooks are signed with (the schedule's: PostgreSQL's time)."""
        self._clock = clock
        self._senders: dict[tuple[object, ...], tuple[Sender, httpx.AsyncClient]] = {}

    def lanes(self, endpoints: Sequence[EndpointSettings]) -> Lanes:
        """{endpoint: (sender, concurrency)}; the pools of senders no longer used are closed
        later."""
        lanes: dict[str, tuple[Sender, int]] = {}
        senders: dict[tuple[object, ...], tuple[Sender, httpx.AsyncClient]] = {}
        previous = self._senders
        for ep in endpoints:
            kind = SENDERS[ep.type]
            key, concurrency = kind.key(ep), kind.concurrency(ep)
            entry = senders.get(key) or previous.get(key)
            if entry is None:
                client = sender_client(concurrency)
                entry = (kind.make(client, ep, self._clock), client)
            senders[key] = entry
            lanes[ep.name] = (entry[0], concurrency)
        self._senders = senders
        kept = {id(client) for _sender, client in senders.values()}
        for _sender, client in previous.values():
            if id(client) not in kept:
                close_later(client.aclose)
        return lanes

    async def aclose(self) -> None:
        for _sender, client in self._senders.values():
            await client.aclose()


class VendorSlot:
    """The current vendor client. ``configure`` with another account or address makes a new
    one (its own token cache and connections; the old one is closed later); the limiter's
    budget is not the client's (``chanjing.qps`` reaches the limiter directly)."""

    def __init__(
        self,
        make: Callable[[VendorSettings], VendorClient],
        settings: VendorSettings,
        on_change: Callable[[VendorClient], None] = lambda _client: None,
    ) -> None:
        self._make = make
        self.settings = settings
        self.client = make(settings)
        #: Told the new client (the poller polls with it).
        self.on_change = on_change

    def configure(self, settings: VendorSettings) -> None:
        if settings == self.settings:
            return
        old, self.settings = self.client, settings
        self.client = self._make(settings)
        self.on_change(self.client)
        close_later(old.aclose)
