"""The intake API's listener (``intake.listen``), following the config across reloads."""

from __future__ import annotations

from collections.abc import Sequence

from notifier import log as logs
from notifier.config import IntakeConfig
from notifier.intake.callback import CallbackObserver, PollNow, VendorCallback, Verify
from notifier.intake.http_api import IntakeApi, Observer
from notifier.service.http_server import AppServer
from notifier.store import Store

log = logs.get_logger(component="intake")


class ListenError(Exception):
    """The configured intake address cannot be bound (in use, not ours, no permission)."""


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
        self.server: AppServer | None = None
        self._timeout: float | None = None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def apply(self, config: IntakeConfig, endpoint_names: Sequence[str]) -> None:
        """Match ``config``. Raises :class:`ListenError` when the address cannot be bound;
        a listener that was running then keeps running where it was."""
        self.api.set_tokens(config.token_values())
        self.api.endpoint_names = list(endpoint_names)
        self.api.client_timeout = config.client_timeout
        self.callback.configure(config.callback_secret(), config.labels, config.endpoints)
        address = config.address()
        server = self.server
        current = (server.host, server.requested_port) if server is not None else None
        if address == current and config.client_timeout == self._timeout:
            return
        if server is not None:
            await server.stop()  # first: the new address may be the same port
            self.server = None
        if address is None:
            log.info("intake listener stopped")
            return
        try:
            await self._start(address, config.client_timeout)
        except OSError as exc:
            if current is not None and self._timeout is not None:
                try:
                    await self._start(current, self._timeout)  # keep serving where it was
                except OSError:
                    log.error("intake listener stopped: its old address is gone too")
            raise ListenError(f"cannot listen on {config.listen}: {exc.strerror or exc}") from exc
        assert self.server is not None
        log.info("intake listening", url=self.server.url)

    async def _start(self, address: tuple[str, int], timeout: float) -> None:
        self.api.client_timeout = timeout
        server = AppServer(self.api.app(), address[0], address[1], **self.api.runner_options())
        await server.start()
        self.server = server
        self._timeout = timeout

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
