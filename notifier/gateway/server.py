"""The gateway's HTTP face: reads an application's request, hands it to :class:`Gateway`.

Only what a vendor call needs is read from a request: method, path, query, body, content
type, the ``access_token`` header and our own label/endpoint headers. Everything else
(cookies, hop-by-hop headers, the application's user agent) stays here, and the answer
carries only the status, body and content type the vendor gave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from notifier import log as logs
from notifier.gateway.door import (
    ENDPOINT_HEADER,
    KNOWN_PATHS,
    LABEL_HEADER,
    RELAYED_HEADER,
    Call,
    Gateway,
    Reply,
    error_reply,
)
from notifier.store import DB_ERRORS

log = logs.get_logger(component="gateway")

#: Bodies over this get 413: uploads go to the vendor's signed storage URL, not through us.
MAX_BODY = 1024 * 1024
#: Headers passed to the gateway (and on to the lease holder when relayed).
PASSED_HEADERS = ("access_token", LABEL_HEADER, ENDPOINT_HEADER, RELAYED_HEADER)
#: (path label, outcome, HTTP status, seconds, seconds waited at the limiter or None).
Observer = Callable[[str, str, int, float, float | None, str | None], None]


def path_label(path: str) -> str:
    return path if path in KNOWN_PATHS else "other"


class GatewayServer:
    def __init__(
        self, gateway: Gateway, *, observer: Observer | None = None, client_timeout: float = 10.0
    ) -> None:
        self.gateway = gateway
        self.observer = observer
        self.client_timeout = client_timeout

    def runner_options(self) -> dict[str, Any]:
        """A connection must deliver its request within ``client_timeout`` (as on intake)."""
        return {"keepalive_timeout": self.client_timeout, "lingering_time": self.client_timeout}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _read(self, request: web.Request) -> Call | Reply:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return error_reply(413, f"request body over {MAX_BODY} bytes")
        try:
            async with asyncio.timeout(self.client_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_reply(413, f"request body over {MAX_BODY} bytes")
        except TimeoutError:
            return error_reply(408, f"request not received within {self.client_timeout:g}s")
        url = request.rel_url
        headers = {name: request.headers.getall(name, []) for name in PASSED_HEADERS}
        return Call(
            method=request.method,
            path=url.raw_path,
            query=url.raw_query_string,
            body=body,
            content_type=request.headers.get("content-type"),
            headers={name: values for name, values in headers.items() if values},
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        path = request.rel_url.raw_path
        try:
            read = await self._read(request)
            reply = read if isinstance(read, Reply) else await self.gateway.handle(read)
        except asyncio.CancelledError:
            raise  # the application hung up: nothing to answer
        except DB_ERRORS as exc:  # the first token call reads the key from the state
            log.warning("gateway call failed on the state", error=str(exc))
            reply = error_reply(
                503, "the state database is unavailable; try again", outcome="failed"
            )
        except Exception:
            log.exception("gateway call failed", method=request.method, path=path_label(path))
            reply = error_reply(500, "internal error", outcome="failed")
        seconds = time.monotonic() - started
        log.info(
            "gateway call",
            method=request.method,
            path=path if reply.status != 404 else path_label(path),
            status=reply.status,
            code=reply.code,
            outcome=reply.outcome,
            client=reply.client,
            account=reply.account,
            duration_ms=round(seconds * 1000, 1),
            waited_ms=None if reply.waited is None else round(reply.waited * 1000, 1),
        )
        if self.observer is not None:
            label = path_label(path)
            self.observer(label, reply.outcome, reply.status, seconds, reply.waited, reply.account)
        response = web.Response(status=reply.status, body=reply.body)
        response.headers["Content-Type"] = reply.content_type
        if reply.status in (408, 413):
            response.force_close()
        return response
