"""The poller's sweep against the real simulator, on a fake clock, as its tests rig it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from notifier.models import WatchSpec
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.service.http_server import AppServer
from notifier.store import Store, WatchRow
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, T0, FakeClock
from tests.kit.poller import poller_settings
from tests.kit.vendor import APP_ID, vendor_client

TOKEN_PATH = "/open/v1/access_token"


DETAIL_PATH = "/open/v1/video_lip_sync/detail"


LIST_PATH = "/open/v1/video_lip_sync/list"


MIN_INTERVAL = 1.0


SETTINGS = PollingSettings(
    min_interval=MIN_INTERVAL, max_interval=60, give_up_after=86400, policy="adaptive"
)


SUBSCRIPTIONS = [("ops", ["lip_sync.succeeded", "lip_sync.failed"])]


class FrontVendor:
    """Stands in front of the simulator: forwards token, detail and list calls to it, but
    can answer list calls itself (a 404, or code 50000) and can hold detail calls of chosen
    jobs until released."""

    def __init__(self, upstream: str, list_answer: str = "forward") -> None:
        self.upstream = upstream
        self.list_answer = list_answer
        self.list_calls = 0
        self.hold: set[str] = set()
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        headers = {
            name: request.headers[name]
            for name in ("content-type", "access_token")
            if name in request.headers
        }
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read(),
            headers=headers,
        ) as resp:
            body = await resp.read()
            return web.Response(status=resp.status, body=body, content_type=resp.content_type)

    async def _detail(self, request: web.Request) -> web.Response:
        if request.query.get("id") in self.hold:
            self.held.set()
            await self.release.wait()
        return await self._forward(request)

    async def _list(self, request: web.Request) -> web.Response:
        self.list_calls += 1
        if self.list_answer == "404":
            raise web.HTTPNotFound()
        if self.list_answer == "50000":
            body = {"trace_id": "0" * 32, "code": 50000, "msg": "internal error", "data": None}
            return web.json_response(body)
        return await self._forward(request)

    async def _client(self, app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession()
        yield
        await self._session.close()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.cleanup_ctx.append(self._client)
        app.router.add_post(TOKEN_PATH, self._forward)
        app.router.add_get(DETAIL_PATH, self._detail)
        app.router.add_post(LIST_PATH, self._list)
        return app


@dataclass
class Rig:
    clock: FakeClock
    sim: VendorSimulator
    store: Store
    limiter: RateLimiter
    poller: Poller

    def calls(self, path: str) -> int:
        """How many calls the simulator itself received on ``path``."""
        count: int = self.sim.stats()["by_path"].get(path, 0)
        return count

    def watch(self, job_ids: Iterable[str]) -> None:
        self.store.add_watches([WatchSpec(job_id) for job_id in job_ids], "queue")

    def row(self, job_id: str) -> WatchRow:
        row = self.store.get_watch(job_id)
        assert row is not None, job_id
        return row

    def vendor_view(self) -> dict[str, dict[str, Any]]:
        """Every job as the simulator would report it now, by id."""
        return {job["id"]: job for job in self.sim.jobs()}


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    qps: int = 10,
    front: Callable[[str], FrontVendor] | None = None,
    start: float = T0,
) -> AsyncIterator[tuple[Rig, FrontVendor | None]]:
    """The simulator (no QPS limit of its own: the client's limiter is what counts), maybe
    a FrontVendor before it, and a Poller wired to both over a store in ``tmp_path``."""
    clock = FakeClock(start)
    sim = VendorSimulator(
        SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=0, seed=7), clock=clock
    )
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(AppServer(sim.make_app()))
        url = server.url
        proxy: FrontVendor | None = None
        if front is not None:
            proxy = front(url)
            url = (await stack.enter_async_context(AppServer(proxy.make_app()))).url
        store = Store(tmp_path / "state.db", clock=clock)
        stack.callback(store.close)
        limiter = RateLimiter(LimiterSettings(qps))
        vendor = vendor_client(url, store, limiter, clock=clock)
        stack.push_async_callback(vendor.aclose)
        if proxy is not None:
            stack.callback(proxy.release.set)  # a failed test must not leave a call held
        poller = Poller(
            store, vendor, limiter, poller_settings(SETTINGS, SUBSCRIPTIONS), clock=clock
        )
        yield Rig(clock, sim, store, limiter, poller), proxy


async def finish_polls() -> None:
    """Wait for the detail polls ``tick()`` started (the poller names them "poll <kind> <id>")."""
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


def add_jobs(sim: VendorSimulator, prefix: str, count: int, **kwargs: Any) -> list[str]:
    return [sim.add_job(f"{prefix}{i:04d}", **kwargs) for i in range(count)]
