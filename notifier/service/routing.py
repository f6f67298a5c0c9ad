"""Who gets which event, from the config: the one translation the daemon (its poller and
operational events, through :mod:`notifier.service.settings`) and ``deliveries replay`` both
route with. Apart from the settings module so the CLI loads no daemon stack for it.

An endpoint's ``events`` may be patterns (``video.*``, ``*.failed``, ``*``); here they become
the concrete event types (``notifier.config.events.expand``), so routing
(``notifier.delivery.transition.route``, ``notifier.delivery.operational.route_operational``)
only ever compares exact names. An endpoint's ``accounts`` (issue 22) limit it to those
accounts' events, operational ones about an account included; events of no account (the
daemon's own: an endpoint failing) reach it as before."""

from __future__ import annotations

from notifier.config import Config
from notifier.delivery.transition import Route, account_view

#: (endpoint name, the concrete event types it takes), in the config's order.
Subscriptions = tuple[tuple[str, tuple[str, ...]], ...]


def routes(config: Config) -> tuple[Route, ...]:
    """Each endpoint's event types and accounts (None: every account's events)."""
    return tuple(
        (ep.name, ep.event_types(), None if ep.accounts is None else tuple(ep.accounts))
        for ep in config.endpoints
    )


def subscriptions(config: Config, account: str | None = None) -> Subscriptions:
    """What each endpoint takes of ``account``'s events (None: of events of no account)."""
    return tuple((name, tuple(events)) for name, events in account_view(routes(config), account))


def account_keys(config: Config) -> tuple[tuple[str, str], ...]:
    """Each account's key in the config, as messages name it (``chanjing``, ``accounts[1]
    (shop)``): where the operator fixes it."""
    accounts = config.vendor_accounts()
    if config.accounts is None:
        return tuple((a.name, "chanjing") for a in accounts)
    return tuple((a.name, f"accounts[{i}] ({a.name})") for i, a in enumerate(accounts))
