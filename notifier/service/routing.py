"""Who gets which event, from the config: the one translation the daemon (its poller and
operational events, through :mod:`notifier.service.settings`) and ``deliveries replay`` both
route with. Apart from the settings module so the CLI loads no daemon stack for it.

An endpoint's ``events`` may be patterns (``video.*``, ``*.failed``, ``*``); here they become
the concrete event types (``notifier.config.events.expand``), so routing
(``notifier.delivery.transition.route``, ``notifier.delivery.operational.route_operational``)
only ever compares exact names."""

from __future__ import annotations

from notifier.config import Config

#: (endpoint name, the concrete event types it takes), in the config's order.
Subscriptions = tuple[tuple[str, tuple[str, ...]], ...]


def subscriptions(config: Config) -> Subscriptions:
    return tuple((ep.name, ep.event_types()) for ep in config.endpoints)
