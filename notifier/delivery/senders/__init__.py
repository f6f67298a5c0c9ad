"""Deliver one event to one endpoint: signed webhooks and Slack.

Senders know nothing of polling, storage or retries: each ``send`` is one attempt whose
:class:`~notifier.models.SendResult` tells the dispatcher what to do next. A ``gate`` passed
with a send may stop the request before its first byte (:class:`Withheld`: no attempt).

:data:`SENDERS` is the endpoint-type table: what a sender of each ``type`` is made of. A new
type is a new row (and its config model), not a new branch in whoever builds senders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from notifier.delivery.senders._http import Gate, Sender, Withheld, parse_retry_after
from notifier.delivery.senders.slack import SlackSender, build_slack_message
from notifier.delivery.senders.webhook import WebhookSender


@dataclass(frozen=True)
class EndpointSettings:
    """One configured endpoint, as its sender needs it."""

    name: str
    #: A key of :data:`SENDERS`.
    type: str
    #: Kept out of repr: a Slack URL is a secret.
    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 10.0
    #: ``delivery.concurrency``; a type may use fewer (:attr:`SenderType.concurrency`).
    concurrency: int = 1


@dataclass(frozen=True)
class SenderType:
    """How senders of one endpoint type are made and shared."""

    #: Endpoints with one key share one sender (and pool); a reload keeps a sender whose
    #: key did not change.
    key: Callable[[EndpointSettings], tuple[Any, ...]]
    #: Attempts at once on the endpoint's lane, and the pool's connections.
    concurrency: Callable[[EndpointSettings], int]
    #: The sender, on its own client; the clock is the one webhooks are signed with.
    make: Callable[[httpx.AsyncClient, EndpointSettings, Callable[[], float]], Sender]


def _webhook_key(ep: EndpointSettings) -> tuple[Any, ...]:
    return ("webhook", ep.name, ep.url, ep.secrets, ep.timeout, ep.concurrency)


def _webhook(client: httpx.AsyncClient, ep: EndpointSettings, clock: Callable[[], float]) -> Sender:
    return WebhookSender(client, ep.url, list(ep.secrets), ep.timeout, clock=clock)


def _slack(client: httpx.AsyncClient, ep: EndpointSettings, _clock: Callable[[], float]) -> Sender:
    return SlackSender(client, ep.url, ep.timeout)


SENDERS: dict[str, SenderType] = {
    "webhook": SenderType(_webhook_key, lambda ep: ep.concurrency, _webhook),
    # One Slack URL has one sender whichever endpoints use it: pacing (one message a second,
    # so one connection and one attempt at a time) is per URL.
    "slack": SenderType(lambda ep: ("slack", ep.url, ep.timeout), lambda _ep: 1, _slack),
}

__all__ = [
    "SENDERS",
    "EndpointSettings",
    "Gate",
    "Sender",
    "SenderType",
    "SlackSender",
    "WebhookSender",
    "Withheld",
    "build_slack_message",
    "parse_retry_after",
]
