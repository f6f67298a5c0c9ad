"""A lane: everything that calls the vendor as one account.

Each account has its own budget (the rate limiter), its own lease (which node may call as
it), its own client (its token) and its own poller, sweeps and fast path. What the lanes
share (the store, the dispatcher, the senders, the listeners) stays with the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from notifier.log import get_logger
from notifier.polling.fastpath import FastPath, Outcomes
from notifier.polling.lease import LEASE_NAME, LeaseKeeper, LeaseSettings, LeaseStore
from notifier.polling.poller import Poller, PollerSettings
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import VendorClient, VendorSettings
from notifier.service.clients import VendorSlot
from notifier.store import Store

log = get_logger(component="lane")

#: The account of a state from before accounts, and of a ``chanjing:`` section.
DEFAULT_LANE = "default"


def lease_name(account: str) -> str:
    """The lease of ``account``'s vendor calls; the default account's keeps its old name,
    so nodes of an older version and this one agree on who holds it."""
    return LEASE_NAME if account == DEFAULT_LANE else f"{LEASE_NAME}:{account}"


@dataclass(frozen=True)
class LaneSettings:
    """One account's parts' settings."""

    name: str
    limiter: LimiterSettings
    vendor: VendorSettings
    lease: LeaseSettings
    poller: PollerSettings


class Lane:
    """One account's limiter, lease, vendor client, poller and fast path, wired together."""

    def __init__(
        self,
        settings: LaneSettings,
        *,
        store: Store,
        lease_store: LeaseStore,
        node: str,
        owner: str,
        presence: bool,
        db: asyncio.Lock,
        sole: bool,
        make_vendor: Callable[[Lane, VendorSettings], VendorClient],
        on_event: Callable[[], None],
        outcomes: Outcomes | None,
        clock: Callable[[], float],
    ) -> None:
        """``make_vendor``: the daemon's client factory (it wires the client's observers to
        the metrics and operational events); ``owner``, ``presence``, ``db``, ``sole``: see
        :class:`LeaseKeeper` (the lanes of one process share the owner, the connection
        ``lease_store`` and its lock; one of them keeps the presence row)."""
        self.name = settings.name
        self.settings = settings
        self.limiter = RateLimiter(settings.limiter)
        self.lease = LeaseKeeper(
            lease_store,
            node,
            settings.lease,
            sole=sole,
            name=lease_name(settings.name),
            owner=owner,
            presence=presence,
            db=db,
        )
        self.vendor_slot = VendorSlot(lambda s: make_vendor(self, s), settings.vendor)
        self.poller = Poller(
            store, self.vendor, self.limiter, settings.poller, on_event=on_event, clock=clock
        )
        self.vendor_slot.on_change = lambda client: setattr(self.poller, "vendor", client)
        self.fast_path = FastPath(self.poller, outcomes=outcomes)

    @property
    def vendor(self) -> VendorClient:
        """The current client (a reload with other credentials or address replaces it)."""
        return self.vendor_slot.client

    def configure(self, settings: LaneSettings) -> None:
        """A reload; the lane's account (its name) does not change."""
        self.settings = settings
        self.lease.configure(settings.lease)  # from the next renewal on
        self.limiter.configure(settings.limiter)
        self.vendor_slot.configure(settings.vendor)
        self.poller.configure(settings.poller)

    async def drain(self, grace: float) -> None:
        """Stopping: polls and fast-path polls in flight may finish within ``grace``."""
        await asyncio.gather(self.poller.drain(grace), self.fast_path.drain(grace))

    async def aclose(self) -> None:
        """After the last call: the lease goes (another node may take over), then the
        client's connections."""
        await self.lease.release()
        await self.vendor.aclose()
