"""The one settings flow: what each of the daemon's parts takes of the config.

:func:`build` turns a :class:`~notifier.config.Config` into :class:`Settings`, a frozen
bundle of one frozen dataclass per part. Each dataclass lives next to its part (so the
imports keep pointing down: a part knows only its own settings, never a pydantic section),
and each part takes it at construction and through one ``configure(settings)``. A reload is
"build, configure each" (:meth:`notifier.service.daemon.Daemon._reload`); the CLI uses the
same translations (``deliveries replay`` routes with
:func:`notifier.service.routing.subscriptions`, every command opens the state with
:func:`notifier.service.state_settings.state_settings`: light modules of their own, so a
command loads no daemon stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from notifier import __version__
from notifier.config import AccountConfig, Config, WebhookEndpoint
from notifier.config.sections import MIN_LEASE
from notifier.delivery.dispatcher import DispatcherSettings
from notifier.delivery.operational import AlertSettings, Thresholds
from notifier.delivery.senders import EndpointSettings
from notifier.gateway.door import GatewaySettings
from notifier.gateway.tokens import ACCOUNT_CLIENT
from notifier.intake.watchfile import WatchFileSettings
from notifier.models import DEFAULT_ACCOUNT
from notifier.polling.discovery import DiscoverySettings
from notifier.polling.lease import MIN_TTL, LeaseSettings
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import PollerSettings
from notifier.polling.ratelimit import LimiterSettings
from notifier.polling.vendor import VendorSettings
from notifier.service.gateway_listener import GatewayListenerSettings
from notifier.service.intake_listener import IntakeSettings
from notifier.service.lane import LaneSettings
from notifier.service.listener import ListenSettings
from notifier.service.routing import account_keys, routes, subscriptions
from notifier.service.state_settings import state_settings
from notifier.store import StateSettings, describe_state
from notifier.watchspec import AccountRule

# The config refuses a shorter lease than the keeper can work with.
assert MIN_LEASE >= MIN_TTL, "state.lease must leave time to call between renewals"


@dataclass(frozen=True)
class Settings:
    """Everything the daemon's parts take of one config."""

    #: Where the state is (fixed for the daemon's life: a reload keeps the running one).
    state: StateSettings
    #: One per vendor account, in the order configured.
    lanes: tuple[LaneSettings, ...]
    #: The account of a watch that names none (None: a watch must name one).
    default_account: str | None
    #: ``polling.min_interval``: how often the scheduled list sweep runs.
    sweep_every: float
    alerts: AlertSettings
    dispatcher: DispatcherSettings
    intake: IntakeSettings
    gateway: GatewayListenerSettings
    metrics: ListenSettings
    watch_file: WatchFileSettings
    #: ``state.retention`` (None: history kept for ever).
    retention: float | None
    log_level: str
    endpoint_names: tuple[str, ...]


def build(config: Config) -> Settings:
    """The settings of every part, from one config."""
    return Settings(
        state=state_settings(config),
        lanes=tuple(lane_settings(config, account) for account in config.vendor_accounts()),
        default_account=config.default_account(),
        sweep_every=config.polling.min_interval,
        alerts=AlertSettings(routes(config), thresholds(config), account_keys(config)),
        dispatcher=DispatcherSettings(
            tuple(config.delivery.retry_schedule), endpoint_settings(config)
        ),
        intake=intake_settings(config),
        gateway=GatewayListenerSettings(
            gateway_settings(config),
            listen("gateway.listen", config.gateway.listen, config.gateway.address()),
            config.intake.client_timeout,
        ),
        metrics=listen("metrics.listen", config.metrics.listen, config.metrics.address()),
        watch_file=WatchFileSettings(config.watch.file),
        retention=config.state.retention or None,
        log_level=config.log.level,
        endpoint_names=tuple(config.endpoint_names()),
    )


def lane_settings(config: Config, account: AccountConfig) -> LaneSettings:
    """What calls the vendor as ``account``: its budget, client, lease and poller."""
    return LaneSettings(
        account.name,
        LimiterSettings(account.qps),
        vendor_settings(account),
        LeaseSettings(config.state.lease, config.gateway.advertised()),
        poller_settings(config, account.name),
    )


def listen(key: str, text: str | None, address: tuple[str, int] | None) -> ListenSettings:
    return ListenSettings(key, text, address)


def vendor_settings(account: AccountConfig) -> VendorSettings:
    secret = account.secret_key.get_secret_value()
    return VendorSettings(account.base_url, account.app_id, secret, account.name)


def polling_settings(config: Config) -> PollingSettings:
    p = config.polling
    return PollingSettings(p.min_interval, p.max_interval, p.give_up_after, p.policy)


def discovery_settings(config: Config) -> DiscoverySettings | None:
    """``watch.discover``; ``since: start`` is read from the state by the discoverer."""
    discover = config.watch.discover
    if discover is None:
        return None
    since = None if discover.since == "start" else float(discover.since)
    endpoints = tuple(discover.endpoints) if discover.endpoints is not None else None
    return DiscoverySettings(since, dict(discover.labels), endpoints, tuple(discover.kinds))


def poller_settings(config: Config, account: str = DEFAULT_ACCOUNT) -> PollerSettings:
    """``account``: the lane's: it polls that account's watches and routes with what each
    endpoint takes of that account's events."""
    return PollerSettings(
        polling_settings(config),
        subscriptions(config, account),
        config.polling.list_sweep,
        discovery_settings(config),
        account,
    )


def thresholds(config: Config) -> Thresholds:
    a = config.alerts
    return Thresholds(a.endpoint_failing_after, a.endpoint_failing_for, a.vendor_failing_for)


def endpoint_settings(config: Config) -> tuple[EndpointSettings, ...]:
    d = config.delivery
    out = []
    for ep in config.endpoints:
        if isinstance(ep, WebhookEndpoint):
            url, secrets = ep.url, tuple(s.get_secret_value() for s in ep.secret)
        else:
            url, secrets = ep.url.get_secret_value(), ()
        out.append(EndpointSettings(ep.name, ep.type, url, secrets, d.timeout, d.concurrency))
    return tuple(out)


def intake_settings(config: Config) -> IntakeSettings:
    i = config.intake
    return IntakeSettings(
        listen=listen("intake.listen", i.listen, i.address()),
        tokens=tuple(i.token_grants()),
        client_timeout=i.client_timeout,
        endpoint_names=tuple(config.endpoint_names()),
        callback_secret=i.callback_secret(),
        labels=dict(i.labels),
        endpoints=tuple(i.endpoints) if i.endpoints is not None else None,
        accounts=AccountRule.configured(config),
    )


def gateway_settings(config: Config) -> GatewaySettings:
    """Each account's own credentials get tokens for that account; a client's, for the
    account it names (none: the default one; the config checked there is one)."""
    g, default = config.gateway, config.default_account()
    credentials = [
        (ACCOUNT_CLIENT, a.name, a.app_id, a.secret_key.get_secret_value())
        for a in config.vendor_accounts()
    ]
    credentials += [
        (x.name, x.account or default or "", x.app_id, x.secret_key.get_secret_value())
        for x in g.clients
    ]
    return GatewaySettings(
        credentials=tuple(credentials),
        share=g.share,
        max_wait=g.max_wait,
        min_interval=config.polling.min_interval,
        labels=dict(g.labels),
        endpoints=tuple(g.endpoints) if g.endpoints is not None else None,
        endpoint_names=tuple(config.endpoint_names()),
        callback_url=config.intake.callback_url(),
        advertise=g.advertised(),
        default_account=default,
    )


def config_summary(config: Config, config_path: str | None) -> dict[str, Any]:
    """What the daemon runs with, for the start-up line: no secrets, no Slack URLs."""
    accounts = config.vendor_accounts()
    endpoints = []
    for ep in config.endpoints:
        item: dict[str, Any] = {"name": ep.name, "type": ep.type, "events": list(ep.events)}
        if isinstance(ep, WebhookEndpoint):
            parts = urlsplit(ep.url)
            item["target"] = f"{parts.scheme}://{parts.hostname}" + (
                f":{parts.port}" if parts.port else ""
            )
            item["secrets"] = len(ep.secret)
        endpoints.append(item)
    return {
        "version": __version__,
        "config": config_path,
        "state": describe_state(state_settings(config)),
        "watch_file": str(config.watch.file) if config.watch.file else None,
        # One account: as before accounts; several: each by name.
        **(
            {"vendor": accounts[0].base_url, "qps": accounts[0].qps}
            if len(accounts) == 1
            else {"accounts": {a.name: {"vendor": a.base_url, "qps": a.qps} for a in accounts}}
        ),
        "lease": config.state.lease,
        "min_interval": config.polling.min_interval,
        "max_interval": config.polling.max_interval,
        "give_up_after": config.polling.give_up_after,
        "retry_steps": len(config.delivery.retry_schedule),
        "endpoints": endpoints,
        "intake": config.intake.listen,
        "gateway": config.gateway.listen,
        "discover": config.watch.discover is not None,
    }
