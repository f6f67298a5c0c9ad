"""The vendor's wire basics the simulator's every answer uses: result codes, the envelope,
the one-token-per-app store and the per-second arrival counter."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from notifier.tools.sim_jobs import SimInputError

CODE_OK = 0
CODE_TOKEN_INVALID = 10400
CODE_PARAM = 40000
CODE_QPS = 40001
CODE_INTERNAL = 50000
CODE_INTERNAL_2 = 51000

#: Per-second arrival counts older than this many seconds are dropped (a long demo run).
PER_SECOND_KEEP = 86_400

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------- envelope helpers


def envelope(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    """The vendor's answer shape; every answer carries a fresh trace id like the real one."""
    return {"trace_id": secrets.token_hex(16), "code": code, "msg": msg, "data": data}


def json_response(body: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.json_response(dict(body), status=status)


def bad_gateway() -> web.Response:
    """What a failing gateway in front of the API returns: HTML, not JSON."""
    return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")


# --------------------------------------------------------------------------- token store


def same(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (str compare_digest won't)."""
    return hmac.compare_digest(given.encode(), expected.encode())


class TokenStore:
    """One valid access token per app: issuing a new token revokes the previous one."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self.issued = 0

    def issue(self, now: float, ttl: float) -> tuple[str, int]:
        """A new token and its expiry as a UNIX timestamp (what ``expire_in`` carries)."""
        self._token = secrets.token_hex(16)
        self._expires_at = now + ttl
        self.issued += 1
        return self._token, int(self._expires_at)

    def valid(self, token: str | None, now: float) -> bool:
        if not token or self._token is None or now >= self._expires_at:
            return False
        return same(token, self._token)

    def revoke(self) -> None:
        self._token = None


# --------------------------------------------------------------------------- QPS counter


class QpsCounter:
    """Arrivals per calendar second (``int(clock())``); an arrival beyond ``qps`` is rejected.

    Rejected arrivals still count: that is how the real limiter behaves, and what a client
    that hammers the API after a 40001 should see reflected in the stats.
    """

    def __init__(self) -> None:
        self.per_second: dict[int, int] = {}
        self.total = 0
        self.max_per_second = 0

    def arrive(self, now: float) -> int:
        """Record one arrival and return its 1-based index within its second."""
        sec = int(now)
        n = self.per_second.get(sec, 0) + 1
        self.per_second[sec] = n
        self.total += 1
        self.max_per_second = max(self.max_per_second, n)
        if len(self.per_second) > PER_SECOND_KEEP:
            for old in sorted(self.per_second)[: len(self.per_second) - PER_SECOND_KEEP]:
                del self.per_second[old]
        return n

    def reset(self) -> None:
        self.per_second.clear()
        self.total = 0
        self.max_per_second = 0


def ids_of(value: Any) -> set[str] | None:
    """The ids a by-ids list call (AI creation's ``unique_ids``) asks for; None when it asks
    for all (the field left out or an empty list)."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SimInputError("unique_ids must be a list of task ids")
    return set(value)


def flag_of(name: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SimInputError(f"{name} must be true or false, got {value!r}")
    return value


def creation_type_of(value: Any) -> int | None:
    """AI creation's ``type``: 3 images, 4 videos. Checked; it filters only with
    ``SimConfig.ai_list_needs_type`` (every simulated AI creation is an image, type 3)."""
    if value is None:
        return None
    if value not in (3, 4) or isinstance(value, bool):
        raise SimInputError(f"type must be 3 (images) or 4 (videos), got {value!r}")
    return int(value)


async def read_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; the vendor answers 40000 for anything else."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise SimInputError("request body must be a JSON object")
    try:
        body = json.loads(raw)
    except ValueError:
        raise SimInputError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SimInputError("request body must be a JSON object")
    return body
