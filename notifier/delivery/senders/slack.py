"""Slack (and Slack-compatible) incoming-webhook sender: Block Kit message, paced per URL."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from notifier import kinds
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
from notifier.models import DEFAULT_ACCOUNT, OPERATIONAL_EVENT_TYPES, Event, SendResult

# Block Kit limits (https://api.slack.com/reference/block-kit).
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
TEXT_MAX = 3000
URL_MAX = 3000
BUTTON_TEXT_MAX = 75
ALT_TEXT_MAX = 2000

#: Headers of job events by outcome: ``{title}`` is the kind's result ("Digital-human
#: video"), ``{subject}`` the job ("Digital-human video job").
HEADERS = {
    "succeeded": "✅ {title} ready",
    "failed": "❌ {subject} failed",
    "expired": "⌛ {subject} given up (still not finished)",
    "rejected": "🚫 {subject} id unknown to Chanjing (no longer watched)",
}
#: The job of a kind where it is not "<title> job": lip-sync's wording since its first message.
_SUBJECTS = {"lip_sync": "Lip-sync job"}
#: What the outcome says a job is, beside the vendor's own status value.
_STATE = {"succeeded": "succeeded", "failed": "failed", "expired": "not finished"}
#: ``data`` keys of a picture to show on success (when it is not already the link).
_IMAGE_FIELDS = ("preview_url", "pic_url")
#: Operational events (about the notifier itself, not a job).
OPS_HEADERS = {
    "endpoint.failing": "🚨 Notification endpoint failing",
    "endpoint.recovered": "✅ Notification endpoint recovered",
    "delivery.dead": "🪦 Notification given up (delivery dead)",
    "vendor.failing": "🚨 Chanjing API failing",
    "vendor.recovered": "✅ Chanjing API recovered",
}


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


@dataclass(frozen=True)
class _Job:
    """How to word one job event: from its kind's table entry, or, for a kind the table does
    not have (an event row of another version), from the type's own words."""

    type: str
    name: str
    outcome: str
    title: str
    subject: str
    kind: kinds.Kind | None

    @classmethod
    def of(cls, event_type: object) -> _Job:
        shown = str(event_type)
        name, _, outcome = shown.partition(".")
        kind = kinds.KINDS.get(name)
        if kind is not None:
            subject = _SUBJECTS.get(kind.name, f"{kind.title} job")
            return cls(shown, kind.name, outcome, kind.title, subject, kind)
        title = f"Chanjing {name} job" if name and outcome else "Chanjing job"
        return cls(shown, name, outcome, title, title, None)

    @property
    def header(self) -> str:
        template = HEADERS.get(self.outcome, "🔔 {subject} update ({type})")
        return template.format(title=self.title, subject=self.subject, type=self.type)

    def status(self, data: Mapping[str, Any]) -> str | None:
        """The vendor's own status value, as it came (never read for a meaning here), after
        what the outcome says of the job."""
        raw = data.get(self.kind.status_field if self.kind else "status")
        if isinstance(raw, bool) or not isinstance(raw, int | float | str) or raw == "":
            return None
        shown = _truncate(_escape(raw), 60)
        state = _STATE.get(self.outcome)
        return f"{state} ({shown})" if state else shown

    def progress(self, data: Mapping[str, Any]) -> object:
        field = self.kind.progress_field if self.kind else "progress"
        return data.get(field) if field else None

    def message(self, data: Mapping[str, Any]) -> str:
        """The vendor's message: why it failed (lip-sync's also says "success")."""
        text = self.kind.message(data) if self.kind else str(data.get("msg") or "")
        return text.strip()

    def duration(self, data: Mapping[str, Any]) -> str | None:
        """Only a duration the vendor client checked: lip-sync's, in milliseconds (other
        kinds' ``duration`` comes as the vendor sent it, in seconds or not at all)."""
        checked = self.kind is not None and "duration" in self.kind.payload_fields
        return format_duration(data.get("duration")) if checked else None

    def link(self, data: Mapping[str, Any]) -> tuple[str, str] | None:
        """(URL, what it is) of the result, when the job succeeded and the data has one."""
        if self.kind is None:
            return None
        url = _http_url(self.kind.link(data))
        return (url, self.kind.link_title) if url else None


def build_slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{"text", "blocks"}`` message for an event payload (``{"type", "timestamp", "data"}``).

    A job event is worded from its type, ``<kind>.<outcome>``: the kind's table entry gives
    the title, the link and the vendor's message; the vendor's status is shown as it came,
    never interpreted (the same code means success for one kind, failure for another).
    Tolerates missing or odd fields; every value from the vendor is escaped and truncated to
    Block Kit's limits.
    """
    event_type = payload.get("type")
    raw_data = payload.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    if event_type in OPERATIONAL_EVENT_TYPES:
        return _operational_message(str(event_type), data, payload.get("timestamp"))
    job = _Job.of(event_type)
    header = job.header
    succeeded = job.outcome == "succeeded"

    job_id = str(data.get("id") or "?")
    msg_text = job.message(data)

    # A rejected id was never seen running: its status and progress say nothing.
    seen = job.outcome != "rejected"
    fields = [_field("Job", _code(job_id))]
    account = _named_account(data)
    if account:
        fields.append(_field("Account", _code(account)))
    status = job.status(data)
    if seen and status:
        fields.append(_field("Status", status))
    duration = job.duration(data)
    if duration:
        fields.append(_field("Duration", duration))
    progress = job.progress(data)
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
        blocks += _result_blocks(job, data, job_id)
    context = f"{_code(event_type or 'event')} at {_escape(payload.get('timestamp') or '?')}"
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _truncate(context, TEXT_MAX)}],
        }
    )

    text = f"{header}: job {_escape(job_id)}"
    if account:
        text += f" on account {_escape(account)}"
    if duration and succeeded:
        text += f" ({duration})"
    if msg_text and not succeeded:
        text += f" — {_escape(msg_text)}"
    return {"text": _truncate(text, TEXT_MAX), "blocks": blocks}


def _named_account(data: Mapping[str, Any]) -> str | None:
    """The account a job message names: any but ``default`` (the ``chanjing`` section's,
    the one account of a daemon that names none: its messages stay as they were)."""
    account = data.get("account")
    if not isinstance(account, str) or not account or account == DEFAULT_ACCOUNT:
        return None
    return _truncate(account, 60)


def _result_blocks(job: _Job, data: Mapping[str, Any], job_id: str) -> list[dict[str, Any]]:
    """A succeeded job's picture (a preview that is not the result itself) and a button to
    its result."""
    blocks: list[dict[str, Any]] = []
    link = job.link(data)
    images = (_http_url(data.get(key)) for key in _IMAGE_FIELDS)
    image = next((url for url in images if url and (link is None or url != link[0])), None)
    if image:
        alt = f"Preview of {job.name.replace('_', '-')} job {job_id}"
        blocks.append(
            {"type": "image", "image_url": image, "alt_text": _truncate(alt, ALT_TEXT_MAX)}
        )
    if link is not None:
        url, what = link
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": _truncate(f"▶ Open {what}", BUTTON_TEXT_MAX)},
            "url": url,
            "action_id": "open_" + re.sub(r"\W+", "_", what),
        }
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


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
    # An endpoint's event names it; a vendor's, the account whose calls fail.
    subject = data.get("endpoint") or data.get("account")
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
