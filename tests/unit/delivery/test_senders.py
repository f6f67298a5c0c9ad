"""Unit tests for the senders: Retry-After parsing, Slack messages, headers and error mapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from notifier.delivery.senders import (
    SlackSender,
    WebhookSender,
    build_slack_message,
    parse_retry_after,
)
from notifier.delivery.senders.slack import format_duration
from notifier.models import FAILED, REJECTED, SUCCEEDED, Event

NOW = 1_800_000_000.0
SECRET_KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()
URL = "https://hooks.example.com/chanjing/T0K3N-in-path"


def make_payload(
    *,
    event_type: str = SUCCEEDED,
    labels: dict[str, str] | None = None,
    **data: Any,
) -> dict[str, Any]:
    succeeded = event_type == SUCCEEDED
    base: dict[str, Any] = {
        "id": "job-123",
        "status": 20 if succeeded else 30,
        "progress": 100 if succeeded else 40,
        "msg": "success" if succeeded else "insufficient balance",
        "video_url": "https://cdn.example.com/v/job-123.mp4" if succeeded else "",
        "preview_url": "https://cdn.example.com/p/job-123.jpg" if succeeded else "",
        "duration": 12345 if succeeded else 0,
        "create_time": 1738636800,
        "labels": labels if labels is not None else {"team": "ops", "lang": "en"},
    }
    base.update(data)
    return {"type": event_type, "timestamp": "2026-11-27T16:00:00Z", "data": base}


def make_event(payload: dict[str, Any] | None = None) -> Event:
    payload = payload or make_payload()
    return Event(
        event_id="evt_0001",
        job_id=payload["data"]["id"],
        type=payload["type"],
        created_at=NOW,
        body=json.dumps(payload, separators=(",", ":")).encode(),
    )


# -- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("1.5", 1.5)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date_in_future() -> None:
    value = formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(value, NOW) == pytest.approx(30.0)


def test_retry_after_http_date_in_past_is_zero() -> None:
    assert parse_retry_after(formatdate(NOW - 3600, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "inf", "nan", "1e3", "12abc"])
def test_retry_after_absent_or_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


# -- build_slack_message ---------------------------------------------------------------------


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == kind]


def _field_texts(message: dict[str, Any]) -> list[str]:
    (section,) = _blocks(message, "section")
    return [f["text"] for f in section["fields"]]


def test_slack_message_success() -> None:
    message = build_slack_message(make_payload())
    assert message["text"].startswith("✅ Lip-sync video ready")
    assert "job-123" in message["text"]
    (header,) = _blocks(message, "header")
    assert header["text"] == {"type": "plain_text", "text": "✅ Lip-sync video ready"}
    fields = "\n".join(_field_texts(message))
    assert "`job-123`" in fields
    assert "succeeded (20)" in fields
    assert "12.3 s" in fields
    assert "`team=ops`" in fields and "`lang=en`" in fields
    assert "success" in fields
    (image,) = _blocks(message, "image")
    assert image["image_url"] == "https://cdn.example.com/p/job-123.jpg"
    assert image["alt_text"]
    (actions,) = _blocks(message, "actions")
    assert actions["elements"][0]["url"] == "https://cdn.example.com/v/job-123.mp4"
    (context,) = _blocks(message, "context")
    assert "2026-11-27T16:00:00Z" in context["elements"][0]["text"]
    json.dumps(message)  # serialisable as is


def test_slack_message_failure() -> None:
    message = build_slack_message(make_payload(event_type=FAILED))
    (header,) = _blocks(message, "header")
    assert header["text"]["text"] == "❌ Lip-sync job failed"
    assert "insufficient balance" in message["text"]
    fields = "\n".join(_field_texts(message))
    assert "failed (30)" in fields
    assert "insufficient balance" in fields
    assert "40%" in fields
    assert not _blocks(message, "image")
    assert not _blocks(message, "actions")


def test_slack_message_for_an_id_the_vendor_does_not_know() -> None:
    payload = make_payload(
        event_type=REJECTED, status=0, progress=0, msg="record not found", rejections=3
    )
    message = build_slack_message(payload)
    (header,) = _blocks(message, "header")
    assert header["text"]["text"] == "🚫 Lip-sync job id unknown to Chanjing (no longer watched)"
    fields = "\n".join(_field_texts(message))
    assert "`job-123`" in fields and "record not found" in fields and "3 times" in fields
    # Never seen running: no "queued (0)", no "0%".
    assert "Status" not in fields and "Progress" not in fields
    assert not _blocks(message, "image") and not _blocks(message, "actions")


@pytest.mark.parametrize(
    "preview", ["", "ftp://cdn.example.com/p.jpg", "javascript:alert(1)", "/relative.jpg", None]
)
def test_slack_message_no_image_for_non_http_preview(preview: str | None) -> None:
    message = build_slack_message(make_payload(preview_url=preview))
    assert not _blocks(message, "image")
    assert _blocks(message, "actions")  # the video link is still there


def test_slack_message_respects_block_kit_limits() -> None:
    long = "x" * 5000
    labels = {f"k{i}": "v" * 500 for i in range(20)}
    message = build_slack_message(
        make_payload(
            event_type=FAILED, id="job-" + "9" * 120, msg=long, labels=labels, duration=999
        )
        | {"timestamp": long}
    )
    (header,) = _blocks(message, "header")
    assert len(header["text"]["text"]) <= 150
    fields = _field_texts(message)
    assert 1 <= len(fields) <= 10
    assert all(len(text) <= 2000 for text in fields)
    assert any(text.endswith("…") for text in fields)
    (context,) = _blocks(message, "context")
    assert len(context["elements"][0]["text"]) <= 3000
    assert len(message["text"]) <= 3000


def test_slack_message_escapes_vendor_text() -> None:
    message = build_slack_message(
        make_payload(event_type=FAILED, msg="<!channel> see <http://evil|here> & `x`")
    )
    fields = "\n".join(_field_texts(message))
    assert "<!channel>" not in fields and "<http://evil" not in fields
    assert "&lt;!channel&gt;" in fields and "&amp;" in fields
    assert "<!channel>" not in message["text"]


def test_slack_message_tolerates_missing_data() -> None:
    message = build_slack_message({"type": SUCCEEDED})
    assert _blocks(message, "header") and _blocks(message, "section")
    assert not _blocks(message, "image") and not _blocks(message, "actions")


@pytest.mark.parametrize(
    ("ms", "text"),
    [(12345, "12.3 s"), (999, "1.0 s"), (125_000, "2 min 5 s"), (3_723_000, "1 h 2 min")],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


@pytest.mark.parametrize("ms", [0, -1, None, "12", True])
def test_format_duration_absent(ms: object) -> None:
    assert format_duration(ms) is None


# -- WebhookSender with a mock transport ------------------------------------------------------


def _client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_webhook_headers_and_signature_with_fixed_clock() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    event = make_event()
    async with _client(handler) as client:
        sender = WebhookSender(client, URL, [SECRET], timeout=5, clock=lambda: NOW + 0.9)
        result = await sender.send(event)
    assert result.ok and result.status == 204
    (request,) = seen
    assert request.content == event.body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "evt_0001"
    assert request.headers["webhook-timestamp"] == str(int(NOW))
    signed = f"evt_0001.{int(NOW)}.".encode() + event.body
    expected = base64.b64encode(hmac.new(SECRET_KEY, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"


async def test_webhook_signs_with_every_secret() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    other = "whsec_" + base64.b64encode(b"another-secret-key-0123456789").decode()
    async with _client(handler) as client:
        await WebhookSender(client, URL, [SECRET, other], timeout=5).send(make_event())
    parts = seen[0].headers["webhook-signature"].split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    assert parts[0] != parts[1]


async def test_webhook_bad_secret_error_does_not_echo_it() -> None:
    bad = "whsec_@@@@@"
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError) as info:
            WebhookSender(client, URL, [bad], timeout=5)
    assert bad not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (httpx.ReadTimeout("read timed out " + URL), "timeout after 5s"),
        (httpx.ConnectError("failed to connect to " + URL), "connection failed: ConnectError"),
        (httpx.RemoteProtocolError("bad " + URL), "protocol error: RemoteProtocolError"),
        (RuntimeError("boom " + URL), "request failed: RuntimeError"),
    ],
)
async def test_webhook_transport_errors_are_failed_attempts(exc: Exception, needle: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with _client(handler) as client:
        result = await WebhookSender(client, URL, [SECRET], timeout=5).send(make_event())
    assert not result.ok and not result.permanent
    assert result.error == needle
    assert URL not in result.error and SECRET not in result.error


async def test_webhook_unsupported_scheme_is_permanent() -> None:
    async with httpx.AsyncClient() as client:
        result = await WebhookSender(client, "ftp://x.example/y", [], timeout=5).send(make_event())
    assert result.permanent and result.error == "unsupported URL scheme"


# -- SlackSender with a mock transport (status mapping: see the receiver tests) -----------------


async def test_slack_error_text_is_short() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="e" * 10_000)

    async with _client(handler) as client:
        result = await SlackSender(client, URL, timeout=5, min_spacing=0).send(make_event())
    assert result.error is not None and len(result.error) <= 120
