"""Shared plumbing for the senders: one bounded POST, error wording, Retry-After.

Every failure is turned into a :class:`SendResult` whose ``error`` is built only from the
status code or the exception's *class name*: exception messages and URLs are never used, so
neither the endpoint URL (a secret for Slack) nor any signing secret can leak into an error.

A send may carry a *gate*: the caller's last word on whether the request may still go, asked
as its first byte is about to be written (after any wait for a connection, connect and TLS).
Senders know nothing of why (the dispatcher's delivery claims); a gate that raises
:class:`Withheld` stops the request with nothing sent, and the sender lets that through.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import structlog

from notifier import net
from notifier.models import Event, SendResult

log = structlog.get_logger(__name__)

#: At most this much of a response body is read (enough for Slack's one-word errors).
READ_LIMIT = 1024
#: At most this many characters of a response body go into an error string.
ERROR_TEXT_LIMIT = 100

#: The kernel gives up on a webhook or Slack request unacknowledged this long
#: (TCP_USER_TIMEOUT, see :mod:`notifier.net`). A delivery's claim outlives its attempt's
#: longest time by 5 s (``store.claims``), and no other node sends it before the claim lapses:
#: 4 s (plus a second for the last segment's trip) keeps an attempt we gave up on from
#: reaching the receiver after another node's attempt began. Receivers may be far away and
#: lossy, so this is more forgiving than the vendor's bound.
WEBHOOK_USER_TIMEOUT = 4.0

_DELAY_SECONDS_RE = re.compile(r"^\d+(?:\.\d+)?$")
_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]+")


def http_client(
    connections: int, *, verify: ssl.SSLContext | bool, headers: Mapping[str, str]
) -> httpx.AsyncClient:
    """A sender's client: a pool of ``connections`` whose sockets carry
    WEBHOOK_USER_TIMEOUT."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        follow_redirects=False,
        headers=dict(headers),
        transport=net.transport(WEBHOOK_USER_TIMEOUT, verify=verify, limits=limits),
    )


#: Asked as a request's first byte is about to be written, with the longest (seconds) the
#: request may still take; raises :class:`Withheld` to stop it.
Gate = Callable[[float], None]


class Withheld(Exception):
    """A send's gate stopped the request before its first byte: nothing was sent, so it is
    no attempt. The one exception a sender lets through."""


class Sender(Protocol):
    """Delivers one event to one endpoint; one call is one attempt. It never raises, except
    :class:`Withheld` from its ``gate`` (then it sent nothing)."""

    async def send(self, event: Event, gate: Gate | None = None) -> SendResult: ...


@dataclass(frozen=True)
class HttpAnswer:
    """The part of an HTTP response the senders look at."""

    status: int
    headers: httpx.Headers
    #: The first :data:`READ_LIMIT` bytes of the body as it came (not decoded), best effort.
    head: bytes


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` (unix time) that a ``Retry-After`` header asks us to wait.

    Accepts delay-seconds (``"120"``; a decimal fraction is tolerated) and HTTP-dates
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). A date in the past gives 0. Absent, negative,
    non-finite or unparseable values give None. Never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELAY_SECONDS_RE.match(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or a zone-less date: HTTP-dates are always UTC
        when = when.replace(tzinfo=UTC)
    try:
        delay = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, delay)


def format_seconds(seconds: float) -> str:
    """``15`` → ``"15s"``, ``0.25`` → ``"0.25s"``."""
    return f"{seconds:g}s"


def sanitize_text(raw: bytes, *, limit: int = ERROR_TEXT_LIMIT, hide: str = "") -> str:
    """A short, single-line, printable-ASCII rendering of a response body.

    ``hide`` (the endpoint URL) is cut out should the receiver echo it back.
    """
    text = raw.decode("utf-8", errors="replace")
    if hide:
        text = text.replace(hide, "<url>")
    text = _UNPRINTABLE_RE.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def redirect_error(status: int) -> str:
    return f"redirect {status} not followed"


def failure_for_status(answer: HttpAnswer, *, error: str, now: float) -> SendResult:
    """A retryable failed attempt carrying the receiver's Retry-After, if any."""
    return SendResult(
        ok=False,
        status=answer.status,
        retry_after=parse_retry_after(answer.headers.get("retry-after"), now),
        error=error,
    )


async def _read_head(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes as they came, never decoded: a receiver answering
    ``Content-Encoding: gzip, gzip`` (a decompression bomb) costs us ``limit`` bytes, where
    httpx's decoding would inflate every layer before any limit applied."""
    if response.is_stream_consumed:  # read already (a transport that hands bodies whole)
        return response.content[:limit]
    buf = bytearray()
    chunks = response.aiter_raw()
    try:
        async for chunk in chunks:
            buf += chunk
            if len(buf) >= limit:
                break
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    return bytes(buf[:limit])


async def post_once(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    read_limit: int = READ_LIMIT,
    gate: Gate | None = None,
) -> HttpAnswer | SendResult:
    """POST ``content`` once, never following redirects, all within ``timeout`` seconds.

    Returns the answer, or a failed :class:`SendResult` when no HTTP status was obtained.
    Only :class:`asyncio.CancelledError` and the ``gate``'s :class:`Withheld` propagate.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    extensions: dict[str, Any] = {}
    if gate is not None:

        async def last_look(event: str, _info: dict[str, Any]) -> None:
            # httpcore's trace: called as the request headers are about to be written.
            if event.endswith("send_request_headers.started"):
                gate(max(0.0, deadline - loop.time()))

        extensions["trace"] = last_look
    try:
        request = client.build_request(
            "POST",
            url,
            content=content,
            headers={"accept-encoding": "identity", **headers},
            timeout=timeout,
            extensions=extensions,
        )
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True, follow_redirects=False)
    except Withheld:
        raise  # nothing was sent (httpx passes the trace's exception through)
    except (httpx.TimeoutException, TimeoutError):
        return SendResult(ok=False, error=f"timeout after {format_seconds(timeout)}")
    except httpx.UnsupportedProtocol:
        return SendResult(ok=False, permanent=True, error="unsupported URL scheme")
    except httpx.InvalidURL:
        return SendResult(ok=False, permanent=True, error="invalid URL")
    except httpx.NetworkError as exc:  # ConnectError, ReadError, WriteError, CloseError
        return SendResult(ok=False, error=f"connection failed: {type(exc).__name__}")
    except httpx.ProtocolError as exc:
        return SendResult(ok=False, error=f"protocol error: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return SendResult(ok=False, error=f"request failed: {type(exc).__name__}")
    except Exception as exc:  # a bug or an odd transport: still an attempt, not a crash
        log.warning("sender.unexpected_error", error_type=type(exc).__name__)
        return SendResult(ok=False, error=f"request failed: {type(exc).__name__}")

    try:
        # The status decides the outcome; the body is read best effort (for error text and
        # so a small answer leaves the connection reusable) within what is left of the budget.
        try:
            remaining = max(0.0, deadline - loop.time())
            head = await asyncio.wait_for(_read_head(response, read_limit), remaining)
        except (TimeoutError, httpx.HTTPError):
            head = b""
        return HttpAnswer(status=response.status_code, headers=response.headers, head=head)
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await response.aclose()
