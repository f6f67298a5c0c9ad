"""Standard Webhooks v1 sender: signed POST of the event body, one attempt per call."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from notifier.delivery.senders._http import (
    Gate,
    HttpAnswer,
    failure_for_status,
    post_once,
    redirect_error,
)
from notifier.models import Event, SendResult


def _signer(secret: str, index: int) -> Webhook:
    try:
        return Webhook(secret)
    except Exception:  # binascii.Error, EmptyWebhookSecretError, ...: never echo the secret
        raise ValueError(
            f"webhook secret #{index + 1} is not a valid secret (expected whsec_<base64>)"
        ) from None


class WebhookSender:
    """POSTs ``event.body`` to ``url`` signed with every secret in ``secrets``.

    Headers: ``content-type: application/json``, ``webhook-id`` (the event id, so identical
    across retries and endpoints), ``webhook-timestamp`` (unix seconds of this attempt, from
    ``clock``) and ``webhook-signature`` (``v1,<base64>`` per secret, space-separated; omitted
    when no secret is configured).

    Outcome: 2xx → ok; 410 → permanent; 3xx (never followed) and any other status → failed
    attempt, with ``retry_after`` from a ``Retry-After`` header; timeouts and transport errors
    → failed attempt. Error strings hold no URL and no secret.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secrets: Sequence[str],
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(secrets, str):  # a lone string would be signed character by character
            secrets = [secrets]
        self._client = client
        self._url = url
        self._signers = [_signer(s, i) for i, s in enumerate(secrets)]
        self._timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:  # the URL may embed credentials: keep it out of reprs
        return f"WebhookSender(secrets={len(self._signers)}, timeout={self._timeout})"

    @property
    def longest_attempt(self) -> float:
        """How long one ``send`` may take: a delivery's claim must outlast it."""
        return self._timeout

    def headers_for(self, event: Event, attempt_time: float) -> dict[str, str]:
        """The headers of an attempt made at ``attempt_time`` (unix seconds)."""
        timestamp = int(attempt_time)
        headers = {
            "content-type": "application/json",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._signers:
            when = datetime.fromtimestamp(timestamp, tz=UTC)
            body = event.body.decode("utf-8")
            headers["webhook-signature"] = " ".join(
                signer.sign(event.event_id, when, body) for signer in self._signers
            )
        return headers

    async def send(self, event: Event, gate: Gate | None = None) -> SendResult:
        """One attempt; ``gate`` is asked right before the request is written (see _http)."""
        now = self._clock()
        try:
            headers = self.headers_for(event, now)
        except UnicodeDecodeError:
            return SendResult(ok=False, permanent=True, error="event body is not UTF-8")
        answer = await post_once(
            self._client,
            self._url,
            content=event.body,
            headers=headers,
            timeout=self._timeout,
            gate=gate,
        )
        if isinstance(answer, SendResult):
            return answer
        return self._judge(answer)

    def _judge(self, answer: HttpAnswer) -> SendResult:
        status = answer.status
        if 200 <= status < 300:
            return SendResult(ok=True, status=status)
        if status == 410:
            return SendResult(ok=False, permanent=True, status=status, error="HTTP 410 Gone")
        if 300 <= status < 400:
            return failure_for_status(answer, error=redirect_error(status), now=self._clock())
        return failure_for_status(answer, error=f"HTTP {status}", now=self._clock())
