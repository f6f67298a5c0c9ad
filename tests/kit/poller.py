"""A poller against a vendor that misbehaves on request, as the fault tests rig it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller, PollerSettings
from notifier.polling.ratelimit import RateLimiter
from notifier.polling.vendor import VendorClient
from notifier.store import Store
from notifier.tools.simulator import VendorSimulator

SETTINGS = PollingSettings(min_interval=1, max_interval=60, give_up_after=86400)


SUBSCRIPTIONS = [("ops", ["lip_sync.succeeded", "lip_sync.failed"])]


def poller_settings(
    polling: PollingSettings = SETTINGS,
    subscriptions: Iterable[tuple[str, Iterable[str]]] = SUBSCRIPTIONS,
    *,
    list_sweep: bool = True,
) -> PollerSettings:
    """A poller's settings as the tests spell them (subscriptions as lists; no discovery)."""
    routes = tuple((name, tuple(events)) for name, events in subscriptions)
    return PollerSettings(polling, routes, list_sweep)


@dataclass
class Rig:
    sim: VendorSimulator
    store: Store
    limiter: RateLimiter
    client: VendorClient
    poller: Poller

    def watch(self, job_id: str) -> dict[str, Any]:
        (row,) = [w for w in self.store.list_watches() if w["job_id"] == job_id]
        return row
