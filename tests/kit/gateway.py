"""The gateway as the gateway tests drive it: an application's client → the gateway (its
server, each account's real vendor client, limiter and poller, a real store) → the vendor
simulator (with one account or several)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from notifier.config import Config, parse_config
from notifier.gateway.door import Gateway
from notifier.gateway.server import GatewayServer
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import VendorClient
from notifier.service.http_server import AppServer, ServerThread
from notifier.service.settings import gateway_settings
from notifier.store import Store
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit.cli import Workspace
from tests.kit.config import APP_ID, SECRET_KEY, base_config, daemon_env
from tests.kit.poller import poller_settings
from tests.kit.servers import Simulator
from tests.kit.vendor import vendor_client

CALLBACK_TOKEN = "cb-token-0123456789abcdef"
CREATE = "/open/v1/video_lip_sync/create"
DETAIL = "/open/v1/video_lip_sync/detail"
#: The second vendor account of two-account tests (the first is the simulator fixture's).
BETA = SimAccount("beta-app", "beta-secret-5d1f", 10, "beta")
#: A gateway client whose calls are made as ``beta``.
BETA_CLIENT = {
    "name": "beta-shop",
    "app_id": "beta-shop-app",
    "secret_key": "beta-shop-2",
    "account": "beta",
}


@dataclass
class HolderSeat:
    """The lease holder's address as the gateway reads it (a test sets it; None: this
    process may call, or nobody holds the lease)."""

    holder_advertise: str | None = None


@dataclass
class KitLane:
    """One account's lane as the gateway uses it: its real client (token, limiter) and
    poller, and where its lease holder is."""

    vendor: VendorClient
    poller: Poller
    lease: HolderSeat = field(default_factory=HolderSeat)


#: What the gateway server reported of one call: (path, outcome, status, seconds, waited).
Observed = tuple[str, str, int, float, float | None, str | None]


@dataclass
class Door:
    gateway: Gateway
    store: Store
    lanes: dict[str, KitLane]
    http: httpx.AsyncClient
    simulator: Simulator
    #: Every call the server answered, in order.
    observed: list[Observed] = field(default_factory=list)

    @property
    def vendor(self) -> VendorClient:
        """The first account's client."""
        return next(iter(self.lanes.values())).vendor

    @property
    def poller(self) -> Poller:
        return next(iter(self.lanes.values())).poller

    def vendor_calls(self, path: str, app_id: str | None = None) -> int:
        """Calls on ``path`` the simulator saw (of the account ``app_id``, or of all)."""
        stats = self.simulator.sim.stats()
        counts = stats["by_path"] if app_id is None else stats["accounts"][app_id]["by_path"]
        return int(counts.get(path, 0))

    async def token(self, app_id: str = APP_ID, secret: str = SECRET_KEY) -> str:
        answer = (
            await self.http.post(
                "/open/v1/access_token", json={"app_id": app_id, "secret_key": secret}
            )
        ).json()
        assert answer["code"] == 0, answer
        return str(answer["data"]["access_token"])


def config_for(
    tmp_path: Path, simulator: Simulator, *, accounts: bool = False, **gateway: Any
) -> Config:
    """The gateway tests' config; ``accounts``: two accounts, ``alpha`` (the simulator
    fixture's app, the default) and ``beta`` (:data:`BETA`), with a client of each."""
    data = base_config(
        tmp_path,
        simulator.url,
        "http://127.0.0.1:9",
        gateway={
            "listen": "127.0.0.1:8787",
            "clients": [{"name": "shop", "app_id": "shop-app", "secret_key": "shop-secret-1"}],
            **gateway,
        },
        intake={"callback_token": CALLBACK_TOKEN, "public_url": "https://notifier.example.com"},
    )
    data["polling"].update(min_interval="5s", max_interval="60s")
    if accounts:
        data["accounts"] = two_accounts(data.pop("chanjing"))
        data["gateway"]["clients"].append(BETA_CLIENT)
    return parse_config(data, environ=daemon_env("http://127.0.0.1:9"))


def two_accounts(chanjing: dict[str, Any], beta_qps: int = 10) -> list[dict[str, Any]]:
    """A ``chanjing`` section as the account ``alpha`` (the default), beside ``beta``."""
    beta = {**chanjing, "app_id": BETA.app_id, "secret_key": BETA.secret_key, "qps": beta_qps}
    return [{"name": "alpha", "default": True, **chanjing}, {"name": "beta", **beta}]


def accounts_workspace(
    tmp_path: Path, simulator: Simulator, receiver_url: str, **sections: Any
) -> Workspace:
    """A daemon's workspace with the accounts alpha and beta (:func:`two_accounts`) and
    ``sections``, its config and an empty watch file written."""
    config = base_config(tmp_path, simulator.url, receiver_url, **sections)
    config["accounts"] = two_accounts(config.pop("chanjing"))
    ws = Workspace(tmp_path, config, daemon_env(receiver_url))
    ws.write_config()
    ws.write_watch([])
    return ws


@contextmanager
def serve_two_accounts() -> Iterator[Simulator]:
    """The simulator fixture's account and :data:`BETA` on one simulator, each with its own
    budget, token and jobs."""
    config = SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=7, accounts=(BETA,))
    sim = VendorSimulator(config)
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


@asynccontextmanager
async def open_door(store: Store, simulator: Simulator, config: Config) -> AsyncIterator[Door]:
    """The gateway of ``config`` on ``store``, a lane per account (list sweeps off until a
    test turns its poller's on), served on a free port."""
    lanes = {}
    for account in config.vendor_accounts():
        limiter = RateLimiter(LimiterSettings(account.qps))
        vendor = vendor_client(
            account.base_url,
            store,
            limiter,
            app_id=account.app_id,
            secret_key=account.secret_key.get_secret_value(),
        )
        polling = poller_settings(PollingSettings(5.0, 60.0, 3600.0), [], list_sweep=False)
        lanes[account.name] = KitLane(vendor, Poller(store, vendor, limiter, polling))
    gateway = Gateway(store, lanes)
    gateway.configure(gateway_settings(config))
    observed: list[Observed] = []
    server = AppServer(GatewayServer(gateway, observer=lambda *call: observed.append(call)).app())
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield Door(gateway, store, lanes, http, simulator, observed)
    finally:
        await server.stop()
        await gateway.aclose()
        for lane in lanes.values():
            await lane.vendor.aclose()
