"""Deliver one event to one endpoint: signed webhooks and Slack.

Senders know nothing of polling, storage or retries: each ``send`` is one attempt whose
:class:`~notifier.models.SendResult` tells the dispatcher what to do next. A ``gate`` passed
with a send may stop the request before its first byte (:class:`Withheld`: no attempt).
"""

from notifier.delivery.senders._http import Gate, Sender, Withheld, parse_retry_after
from notifier.delivery.senders.slack import SlackSender, build_slack_message
from notifier.delivery.senders.webhook import WebhookSender

__all__ = [
    "Gate",
    "Sender",
    "SlackSender",
    "WebhookSender",
    "Withheld",
    "build_slack_message",
    "parse_retry_after",
]
