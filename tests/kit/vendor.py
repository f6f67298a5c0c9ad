"""The vendor as tests meet it: a client for an account (the simulator fixture's unless
told otherwise), and the simulator on a fake clock served over loopback."""

from __future__ import annotations

from typing import Any

import httpx

from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import VendorClient, VendorSettings
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.simulator import VendorSimulator
from tests.kit.clocks import FakeClock
from tests.kit.config import APP_ID, SECRET_KEY


def vendor_client(
    base_url: str,
    store: Store,
    limiter: RateLimiter | None = None,
    *,
    app_id: str = APP_ID,
    secret_key: str = SECRET_KEY,
    **runtime: Any,
) -> VendorClient:
    """A client for the account at ``base_url`` (the simulator fixture's credentials by
    default), as the daemon builds one: its settings, then its collaborators. ``limiter``:
    10 calls/s when not given; ``runtime``: the client's other keywords (``clock``, ``lease``,
    ``timeout``, ``transport``, ``verify``)."""
    return VendorClient(
        VendorSettings(base_url, app_id, secret_key),
        limiter=limiter if limiter is not None else RateLimiter(LimiterSettings(10)),
        store=store,
        **runtime,
    )


class Vendor:
    """A running simulator plus an httpx client speaking the vendor API to it."""

    def __init__(self, sim: VendorSimulator, server: ServerThread, clock: FakeClock) -> None:
        self.sim = sim
        self.server = server
        self.clock = clock
        self.http = httpx.Client(base_url=server.url, timeout=10)

    def token(self, app_id: str = "demo-app", secret_key: str = "demo-secret") -> dict[str, Any]:
        body = {"app_id": app_id, "secret_key": secret_key}
        resp = self.http.post("/open/v1/access_token", json=body)
        assert resp.status_code == 200
        result: dict[str, Any] = resp.json()
        return result

    def new_token(self) -> str:
        answer = self.token()
        assert answer["code"] == 0, answer
        token: str = answer["data"]["access_token"]
        return token

    def detail(self, job_id: str | None, token: str | None) -> dict[str, Any]:
        headers = {"access_token": token} if token is not None else {}
        params = {"id": job_id} if job_id is not None else {}
        resp = self.http.get("/open/v1/video_lip_sync/detail", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def post(self, path: str, body: Any, token: str | None = None) -> dict[str, Any]:
        headers = {"access_token": token} if token is not None else {}
        resp = self.http.post(path, json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result
