"""What the daemon's parts take of its config: each stage gets its own settings, not the
whole config, and the start-up line a summary without secrets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from notifier import __version__
from notifier.config import Config, WebhookEndpoint
from notifier.delivery.operational import Thresholds
from notifier.polling.policy import PollingSettings
from notifier.store import describe_state


def polling_settings(config: Config) -> PollingSettings:
    p = config.polling
    return PollingSettings(p.min_interval, p.max_interval, p.give_up_after, p.policy)


def subscriptions(config: Config) -> list[tuple[str, Sequence[str]]]:
    return [(ep.name, list(ep.events)) for ep in config.endpoints]


def thresholds(config: Config) -> Thresholds:
    a = config.alerts
    return Thresholds(a.endpoint_failing_after, a.endpoint_failing_for, a.vendor_failing_for)


def config_summary(config: Config, config_path: str | None) -> dict[str, Any]:
    """What the daemon runs with, for the start-up line: no secrets, no Slack URLs."""
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
        "state": describe_state(config.state),
        "watch_file": str(config.watch.file) if config.watch.file else None,
        "vendor": config.chanjing.base_url,
        "qps": config.chanjing.qps,
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
