"""Who gets which event, from the config: the one translation the daemon (its poller and
operational events, through :mod:`notifier.service.settings`) and ``deliveries replay`` both
route with. Apart from the settings module so the CLI loads no daemon stack for it."""

from __future__ import annotations

from notifier.config import Config

#: (endpoint name, its event types), in the config's order.
Subscriptions = tuple[tuple[str, tuple[str, ...]], ...]


def subscriptions(config: Config) -> Subscriptions:
    return tuple((ep.name, tuple(ep.events)) for ep in config.endpoints)
