"""The intake API's listener (``intake.listen``), following the config across reloads."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from notifier import log as logs
from notifier.intake.callback import CallbackObserver, PollNow, VendorCallback, Verify
from notifier.intake.http_api import IntakeApi, Observer
from notifier.service.http_server import AppServer
from notifier.service.listener import Listener, ListenError, ListenSettings
from notifier.store import Store
from notifier.watchspec import ANY_ACCOUNT, AccountRule

log = logs.get_logger(component="intake")

__all__ = ["IntakeListener", "IntakeSettings", "ListenError"]


@dataclass(frozen=True)
class IntakeSettings:
    """``intake``, and the endpoint names a watch may name."""

    listen: ListenSettings
    #: Each token and the accounts it is limited to (None: every account).
    tokens: tuple[tuple[str, tuple[str, ...] | None], ...] = field(repr=False)
    client_timeout: float
    endpoint_names: tuple[str, ...]
    #: ``intake.callback_token`` (None: every vendor callback gets 404).
    callback_secret: str | None = field(repr=False)
    labels: Mapping[str, str]
    endpoints: tuple[str, ...] | None
    #: The configured accounts a watch may name, and the one it gets when it names none.
    accounts: AccountRule = ANY_ACCOUNT


class IntakeListener:
    """One :class:`IntakeApi` (its tokens and endpoint names follow reloads at once) and
    the server that runs it, restarted only when the address or the timeouts change."""

    def __init__(
        self,
        store: Store,
        observer: Observer | None = None,
        *,
        poll_now: PollNow | None = None,
        callback_observer: CallbackObserver | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.api = IntakeApi(store, [], [], observer=observer)
        self.callback = VendorCallback(self.api, poll_now, callback_observer, verify)
        self._listener = Listener(
            self._server, "intake listener", stopped="intake listener stopped"
        )

    @property
    def server(self) -> AppServer | None:
        return self._listener.server

    @property
    def url(self) -> str | None:
        return self._listener.url

    async def configure(self, settings: IntakeSettings) -> None:
        """Match ``settings``. Raises :class:`ListenError` when the address cannot be bound;
        a listener that was running then keeps running where it was."""
        self.api.set_tokens(settings.tokens)
        self.api.endpoint_names = list(settings.endpoint_names)
        self.api.accounts = settings.accounts
        self.api.client_timeout = settings.client_timeout
        self.callback.configure(
            settings.callback_secret, settings.labels, settings.endpoints, settings.accounts
        )
        if await self._listener.bind(settings.listen, settings.client_timeout):
            log.info("intake listening", url=self.url)

    def _server(self, address: tuple[str, int], timeout: Hashable) -> AppServer:
        assert isinstance(timeout, float | int)
        self.api.client_timeout = float(timeout)
        return AppServer(self.api.app(), address[0], address[1], **self.api.runner_options())

    async def stop(self) -> None:
        await self._listener.stop()
