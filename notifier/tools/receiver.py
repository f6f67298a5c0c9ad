"""A real local receiving server for webhook and Slack-style callbacks.

Used by the offline demo and by the integration tests: it accepts POSTs on any path, checks
Standard Webhooks signatures for paths it has secrets for, records every attempt, and can be
scripted to answer with failures (per webhook-id) or to answer slowly.

Thread-safe: the server may run on another thread (see
:class:`notifier.service.http_server.ServerThread`)
while tests read :attr:`Receiver.received` or block in :meth:`Receiver.wait_for_blocking`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

ScriptedResponse = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], str]

#: Bodies that make scripted answers look like Slack's plain-text errors.
_SLACK_LIKE_BODIES = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "internal_error",
}

RECEIVED_PATH = "/_receiver/received"


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what it was answered."""

    path: str
    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    #: True/False for paths with secrets; None for paths without (Slack-style).
    verified: bool | None
    body: bytes
    #: The body parsed as JSON, or None when it is not JSON.
    payload: Any
    #: ``clock()`` when the request had been read.
    received_at: float
    #: 1-based, per (path, webhook-id), or per path when there is no webhook-id.
    attempt: int
    status_returned: int
    content_type: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status_returned < 300

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "webhook_id": self.webhook_id,
            "timestamp": self.timestamp,
            "verified": self.verified,
            "payload": self.payload,
            "received_at": self.received_at,
            "attempt": self.attempt,
            "status_returned": self.status_returned,
            "content_type": self.content_type,
        }


def _verifiers(secrets: Sequence[str]) -> list[Webhook]:
    if isinstance(secrets, str):
        secrets = [secrets]
    out = []
    for i, secret in enumerate(secrets):
        try:
            out.append(Webhook(secret))
        except Exception:
            raise ValueError(f"receiver secret #{i + 1} is not a valid whsec_ secret") from None
    return out


class Receiver:
    """Records callbacks; see the module docstring."""

    def __init__(
        self,
        secrets: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        any_path: Sequence[str] | None = None,
        unsigned: Sequence[str] = (),
        on_request: Callable[[Received], None] | None = None,
    ) -> None:
        """``any_path``: secrets for every path without its own (``chanjing-notifier
        receive``); ``unsigned``: paths taken without a signature whatever ``any_path``
        says (Slack posts carry none); ``on_request`` sees each request as it is recorded."""
        self._verifiers = {path: _verifiers(s) for path, s in (secrets or {}).items()}
        self._unsigned = frozenset(unsigned)
        self._any_path = _verifiers(any_path) if any_path else None
        self._on_request = on_request
        self._clock = clock
        self._cond = threading.Condition(threading.RLock())
        self.received: list[Received] = []
        self._scripts: dict[str, list[tuple[int, dict[str, str], str | None]]] = {}
        self._delays: dict[str, float] = {}
        self._attempts: dict[tuple[str, str | None], int] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # -- configuration -------------------------------------------------------------------

    def script(self, path: str, responses: Sequence[ScriptedResponse]) -> None:
        """The first ``len(responses)`` attempts per webhook-id on ``path`` get these answers.

        Each item is a status, ``(status, headers)`` or ``(status, headers, body)``; later
        attempts get 200. Requests without a webhook-id (Slack-style) count per path.
        Scripting a path restarts its attempt counts.
        """
        parsed: list[tuple[int, dict[str, str], str | None]] = []
        for item in responses:
            if isinstance(item, int):
                parsed.append((item, {}, None))
            elif len(item) == 2:
                parsed.append((item[0], dict(item[1]), None))
            else:
                parsed.append((item[0], dict(item[1]), item[2]))
        with self._cond:
            self._scripts[path] = parsed
            for key in [k for k in self._attempts if k[0] == path]:
                del self._attempts[key]

    def set_delay(self, path: str, seconds: float) -> None:
        """Answer requests on ``path`` only after ``seconds`` (a slow endpoint); 0 clears, and
        answers the requests waiting now (a test holds an attempt in flight until it is done
        looking, whatever the machine's speed)."""
        with self._cond:
            if seconds > 0:
                self._delays[path] = seconds
            else:
                self._delays.pop(path, None)

    # -- queries ---------------------------------------------------------------------------

    def all(self, path: str | None = None) -> list[Received]:
        with self._cond:
            return [r for r in self.received if path is None or r.path == path]

    def accepted(self, path: str | None = None) -> list[Received]:
        """Attempts answered 2xx, optionally only those on ``path``."""
        return [r for r in self.all(path) if r.accepted]

    def summary(self) -> dict[str, Any]:
        with self._cond:
            records = list(self.received)
        by_path: dict[str, dict[str, Any]] = {}
        for r in records:
            entry = by_path.setdefault(
                r.path,
                {"requests": 0, "accepted": 0, "verified": 0, "failed_verification": 0},
            )
            entry["requests"] += 1
            entry["accepted"] += int(r.accepted)
            entry["verified"] += int(r.verified is True)
            entry["failed_verification"] += int(r.verified is False)
        for path, entry in by_path.items():
            ids = {r.webhook_id for r in records if r.path == path and r.webhook_id and r.accepted}
            entry["accepted_webhook_ids"] = len(ids)
        return {
            "requests": len(records),
            "accepted": sum(1 for r in records if r.accepted),
            "failed_verification": sum(1 for r in records if r.verified is False),
            "paths": by_path,
        }

    async def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Wait (in any event loop, even not the server's) until ``predicate(self)`` holds.

        Woken by every request, no polling. Returns whether the predicate held in time.
        """
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        waiter = (loop, woken)
        deadline = loop.time() + timeout
        with self._cond:
            self._waiters.append(waiter)
        try:
            while True:
                woken.clear()
                if predicate(self):
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    async with asyncio.timeout(remaining):
                        await woken.wait()
                except TimeoutError:
                    return predicate(self)
        finally:
            with self._cond:
                self._waiters.remove(waiter)

    def wait_for_blocking(self, predicate: Callable[[Receiver], bool], timeout: float) -> bool:
        """Block this thread until ``predicate(self)`` holds (server on another thread)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- the server ------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A fresh aiohttp app: ``POST /<any path>`` and ``GET /_receiver/received``."""
        app = web.Application()
        stopping = asyncio.Event()

        async def on_shutdown(_app: web.Application) -> None:
            stopping.set()  # let slow answers finish now rather than hold up the shutdown

        async def handle_post(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, stopping)

        async def handle_received(_request: web.Request) -> web.StreamResponse:
            with self._cond:
                records = [r.as_json() for r in self.received]
            return web.json_response({"summary": self.summary(), "received": records})

        app.on_shutdown.append(on_shutdown)
        app.router.add_get(RECEIVED_PATH, handle_received)
        app.router.add_post("/{tail:.*}", handle_post)
        return app

    async def _handle(self, request: web.Request, stopping: asyncio.Event) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        headers = {k.lower(): v for k, v in request.headers.items()}
        webhook_id = headers.get("webhook-id")
        verified = self._verify(path, body, headers)
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None

        status: int
        extra: dict[str, str]
        text: str | None
        with self._cond:
            key = (path, webhook_id)
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            script = self._scripts.get(path, [])
            delay = self._delays.get(path, 0.0)
            if verified is False:
                status, extra, text = 400, {}, "invalid signature"
            elif attempt <= len(script):
                status, extra, text = script[attempt - 1]
            else:
                status, extra, text = 200, {}, None
            record = Received(
                path=path,
                webhook_id=webhook_id,
                timestamp=headers.get("webhook-timestamp"),
                signature=headers.get("webhook-signature"),
                verified=verified,
                body=body,
                payload=payload,
                received_at=self._clock(),
                attempt=attempt,
                status_returned=status,
                content_type=headers.get("content-type"),
            )
            self.received.append(record)
            self._cond.notify_all()
            waiters = list(self._waiters)
        self._wake(waiters)
        if self._on_request is not None:
            self._on_request(record)

        if delay > 0:
            deadline = asyncio.get_running_loop().time() + delay
            while path in self._delays and not stopping.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), min(left, 0.05))
        if text is None:
            text = "ok" if 200 <= status < 300 else _SLACK_LIKE_BODIES.get(status)
        if text is None:
            text = _reason(status)
        if status in (204, 304):  # these must not carry a body
            response = web.Response(status=status, headers=extra)
        else:
            response = web.Response(status=status, text=text, headers=extra)
        if 300 <= status < 400 and "Location" not in extra and "location" not in extra:
            response.headers["Location"] = path.rstrip("/") + "/redirected"
        return response

    def _verify(self, path: str, body: bytes, headers: dict[str, str]) -> bool | None:
        verifiers = self._verifiers.get(path, self._any_path)
        if verifiers is None or path in self._unsigned:
            return None
        for verifier in verifiers:
            try:
                verifier.verify(body, headers, json_parse=False)
            except Exception:  # missing headers, bad base64, wrong secret, stale, not UTF-8
                continue
            return True
        return False

    @staticmethod
    def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, event in waiters:
            if loop is running:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(event.set)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status {status}"


# --------------------------------------------------------------------------- CLI entry point


def describe(record: Received) -> str:
    """One line for a person watching callbacks arrive (``chanjing-notifier receive``)."""
    when = time.strftime("%H:%M:%SZ", time.gmtime(record.received_at))
    payload = record.payload if isinstance(record.payload, dict) else {}
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    kind = payload.get("type") or ("slack message" if "text" in payload else "request")
    job = data.get("job_id") or data.get("id")
    check = {True: "verified", False: "SIGNATURE INVALID (answered 400)", None: "not verified"}
    parts = [when, record.path, str(kind)]
    if job:
        parts.append(f"job {job}")
    if record.webhook_id:
        parts.append(f"id {record.webhook_id}")
    parts.append(check[record.verified])
    return "  ".join(parts)


def run_receiver(
    host: str,
    port: int,
    secrets: Sequence[str],
    *,
    as_json: bool = False,
    slack_paths: Sequence[str] = (),
) -> None:
    """Serve until SIGINT/SIGTERM, printing each request as it arrives; ``slack_paths`` take
    unsigned (Slack-format) posts while the other paths are verified."""
    import signal
    import sys

    from notifier.service.http_server import AppServer

    def show(record: Received) -> None:
        if as_json:
            print(json.dumps(record.as_json(), ensure_ascii=False), flush=True)
            return
        print(describe(record), flush=True)
        if record.verified is not False and record.payload is not None:
            print("  " + json.dumps(record.payload, ensure_ascii=False), flush=True)

    receiver = Receiver(any_path=list(secrets) or None, unsigned=slack_paths, on_request=show)

    async def main() -> None:
        server = AppServer(receiver.make_app(), host, port)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        checked = "checking signatures" if secrets else "NOT checking signatures (no --secret)"
        if slack_paths:
            checked += f"; unsigned Slack posts on {', '.join(slack_paths)}"
        print(f"receiver listening on {server.url}/ (any path), {checked}", file=sys.stderr)
        sys.stderr.flush()
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
