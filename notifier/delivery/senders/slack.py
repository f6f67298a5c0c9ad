"""Slack (and Slack-compatible) incoming-webhook sender: Block Kit message, paced per URL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from notifier.delivery.senders._http import (
    ERROR_TEXT_LIMIT,
    Gate,
    HttpAnswer,
    Withheld,
    failure_for_status,
    post_once,
    redirect_error,
    sanitize_text,
)
from notifier.models import (
    EXPIRED,
    FAILED,
    OPERATIONAL_EVENT_TYPES,
    REJECTED,
    STATUS_FAILED,
    STATUS_SUCCESS,
    SUCCEEDED,
    Event,
    SendResult,
)

# Block Kit limits (https://api.slack.com/reference/block-kit).
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
TEXT_MAX = 3000
URL_MAX = 3000
BUTTON_TEXT_MAX = 75
ALT_TEXT_MAX = 2000

HEADER_SUCCEEDED = "✅ Lip-sync video ready"
HEADER_FAILED = "❌ Lip-sync job failed"
HEADER_EXPIRED = "⌛ Lip-sync job given up (still not finished)"
HEADER_REJECTED = "🚫 Lip-sync job id unknown to Chanjing (no longer watched)"
#: Operational events (about the notifier itself, not a job).
OPS_HEADERS = {
    "endpoint.failing": "🚨 Notification endpoint failing",
    "endpoint.recovered": "✅ Notification endpoint recovered",
    "delivery.dead": "🪦 Notification given up (delivery dead)",
    "vendor.failing": "🚨 Chanjing API failing",
    "vendor.recovered": "✅ Chanjing API recovered",
}

_STATUS_TEXT = {0: "queued", 10: "generating", STATUS_SUCCESS: "succeeded", STATUS_FAILED: "failed"}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(value: object) -> str:
    """Text safe for mrkdwn: no ``<!channel>`` pings or disguised links from vendor data."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(value: object) -> str:
    """``value`` as inline code (backticks inside would end the span early)."""
    return "`" + _escape(value).replace("`", "'") + "`"


def _http_url(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > URL_MAX:
        return None
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return value


def format_duration(ms: object) -> str | None:
    """``12345`` (ms) → ``"12.3 s"``; ``125000`` → ``"2 min 5 s"``; None when absent/zero."""
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not ms > 0:
        return None
    seconds = float(ms) / 1000.0
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _slack_date(unix: object) -> str | None:
    """A Slack date token (rendered in the reader's time zone) with a UTC fallback."""
    if isinstance(unix, bool) or not isinstance(unix, int | float) or unix <= 0:
        return None
    try:
        fallback = datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return None
    return f"<!date^{int(unix)}^{{date_short_pretty}} {{time}}|{fallback}>"


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _truncate(f"*{title}*\n{value}", FIELD_TEXT_MAX)}


def build_slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{"text", "blocks"}`` message for an event payload (``{"type", "timestamp", "data"}``).

    Tolerates missing or odd fields; every value from the vendor is escaped and truncated to
    Block Kit's limits.
    """
    event_type = payload.get("type")
    raw_data = payload.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    if event_type in OPERATIONAL_EVENT_TYPES:
        return _operational_message(str(event_type), data, payload.get("timestamp"))
    status = data.get("status")
    succeeded = event_type == SUCCEEDED or (event_type != FAILED and status == STATUS_SUCCESS)
    if succeeded:
        header = HEADER_SUCCEEDED
    elif event_type == FAILED or status == STATUS_FAILED:
        header = HEADER_FAILED
    elif event_type == EXPIRED:
        header = HEADER_EXPIRED
    elif event_type == REJECTED:
        header = HEADER_REJECTED
    else:
        header = f"🔔 Lip-sync job update ({event_type})"

    job_id = str(data.get("id") or "?")
    msg = data.get("msg")
    msg_text = str(msg).strip() if msg is not None else ""

    # A rejected id was never seen running: its status and progress say nothing.
    seen = event_type != REJECTED
    fields = [_field("Job", _code(job_id))]
    if seen and isinstance(status, int) and not isinstance(status, bool):
        fields.append(_field("Status", f"{_STATUS_TEXT.get(status, 'unknown')} ({status})"))
    duration = format_duration(data.get("duration"))
    if duration:
        fields.append(_field("Duration", duration))
    progress = data.get("progress")
    if seen and not succeeded and isinstance(progress, int) and not isinstance(progress, bool):
        fields.append(_field("Progress", f"{progress}%"))
    rejections = data.get("rejections")
    if not seen and isinstance(rejections, int) and not isinstance(rejections, bool):
        fields.append(_field("Rejected", f"{rejections} times"))
    if msg_text:
        fields.append(_field("Vendor message", _escape(msg_text)))
    created = _slack_date(data.get("create_time"))
    if created:
        fields.append(_field("Created", created))
    labels = data.get("labels")
    if isinstance(labels, Mapping) and labels:
        rendered = " ".join(_code(f"{k}={v}") for k, v in labels.items())
        fields.append(_field("Labels", rendered))

    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _truncate(header, HEADER_TEXT_MAX)},
        },
        {"type": "section", "fields": fields[:MAX_FIELDS]},
    ]
    if succeeded:
        preview = _http_url(data.get("preview_url"))
        if preview:
            blocks.append(
                {
                    "type": "image",
                    "image_url": preview,
                    "alt_text": _truncate(f"Preview of lip-sync job {job_id}", ALT_TEXT_MAX),
                }
            )
        video = _http_url(data.get("video_url"))
        if video:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {
                                "type": "plain_text",
                                "text": _truncate("▶ Open video", BUTTON_TEXT_MAX),
                            },
                            "url": video,
                            "action_id": "open_video",
                        }
                    ],
                }
            )
    context = f"{_code(event_type or 'event')} at {_escape(payload.get('timestamp') or '?')}"
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _truncate(context, TEXT_MAX)}],
        }
    )

    text = f"{header}: job {_escape(job_id)}"
    if duration and succeeded:
        text += f" ({duration})"
    if msg_text and not succeeded:
        text += f" — {_escape(msg_text)}"
    return {"text": _truncate(text, TEXT_MAX), "blocks": blocks}


def _operational_message(
    event_type: str, data: Mapping[str, Any], timestamp: object
) -> dict[str, Any]:
    """An event about the notifier itself: its header and every data field, escaped."""
    header = OPS_HEADERS.get(event_type, event_type)
    fields = [
        _field(key.replace("_", " ").capitalize(), _escape(value))
        for key, value in data.items()
        if value is not None and value != ""
    ]
    context = f"{_code(event_type)} at {_escape(timestamp or '?')}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _truncate(header, HEADER_TEXT_MAX)},
        },
        {"type": "section", "fields": fields[:MAX_FIELDS]},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _truncate(context, TEXT_MAX)}],
        },
    ]
    if not fields:
        del blocks[1]  # Block Kit rejects a section without fields
    subject = data.get("endpoint")
    text = f"{header}: {_escape(subject)}" if subject else header
    error = data.get("last_error") or data.get("error")
    if error:
        text += f" — {_escape(error)}"
    return {"text": _truncate(text, TEXT_MAX), "blocks": blocks}


class SlackSender:
    """POSTs a Block Kit message to a Slack incoming webhook, at most one per ``min_spacing``.

    Pacing is per sender (make one sender per Slack URL): concurrent sends queue on a lock, and
    a request starts only ``min_spacing`` seconds after the previous one *finished*, so the gap
    holds on the receiving side too.

    Outcome: 2xx → ok; 429 → failed with ``retry_after``; 3xx, 5xx, timeouts and transport
    errors → failed (retryable); any other 4xx → permanent, with Slack's short plain-text reason
    (``"HTTP 404: no_service"``). Errors never contain the URL, which is a secret.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        timeout: float,
        min_spacing: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = url
        self._timeout = timeout
        self._min_spacing = min_spacing
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_done: float | None = None

    def __repr__(self) -> str:  # the URL is a credential
        return f"SlackSender(timeout={self._timeout}, min_spacing={self._min_spacing})"

    @property
    def longest_attempt(self) -> float:
        """How long one ``send`` may take (the pause after the previous message, then the
        POST): a delivery's claim must outlast it. Waiting behind other endpoints that share
        this URL is not included."""
        return self._min_spacing + self._timeout

    async def send(self, event: Event, gate: Gate | None = None) -> SendResult:
        """One attempt; ``gate`` is asked right before the request is written (see _http)."""
        try:
            message = build_slack_message(event.payload)
            content = json.dumps(message, ensure_ascii=False).encode("utf-8")
        except (ValueError, TypeError, AttributeError):
            return SendResult(ok=False, permanent=True, error="event body is not a JSON object")
        async with self._lock:
            if self._last_done is not None:
                wait = self._last_done + self._min_spacing - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            sent = True
            try:
                answer = await post_once(
                    self._client,
                    self._url,
                    content=content,
                    headers={"content-type": "application/json"},
                    timeout=self._timeout,
                    gate=gate,
                )
            except Withheld:
                sent = False  # nothing went out: the pause after the last message stands
                raise
            finally:
                if sent:
                    self._last_done = self._clock()
        if isinstance(answer, SendResult):
            return answer
        return self._judge(answer)

    def _judge(self, answer: HttpAnswer) -> SendResult:
        status = answer.status
        if 200 <= status < 300:
            return SendResult(ok=True, status=status)
        if status == 429:
            return failure_for_status(answer, error="HTTP 429 rate limited", now=time.time())
        if 300 <= status < 400:
            return failure_for_status(answer, error=redirect_error(status), now=time.time())
        if 400 <= status < 500:
            reason = sanitize_text(answer.head, limit=ERROR_TEXT_LIMIT, hide=self._url)
            error = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
            return SendResult(ok=False, permanent=True, status=status, error=error)
        return failure_for_status(answer, error=f"HTTP {status}", now=time.time())
