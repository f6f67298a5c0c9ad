"""The gateway as the gateway tests drive it: an application's client → the gateway (its
server, the real vendor client and limiter, a real store) → the vendor simulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from notifier.config import Config, parse_config
from notifier.gateway.door import Gateway
from notifier.polling.poller import Poller
from notifier.polling.vendor import VendorClient
from notifier.store import Store
from tests.kit.config import APP_ID, SECRET_KEY, base_config, daemon_env
from tests.kit.servers import Simulator

CALLBACK_TOKEN = "cb-token-0123456789abcdef"
CREATE = "/open/v1/video_lip_sync/create"
DETAIL = "/open/v1/video_lip_sync/detail"


@dataclass
class Door:
    gateway: Gateway
    store: Store
    vendor: VendorClient
    http: httpx.AsyncClient
    simulator: Simulator
    poller: Poller

    def vendor_calls(self, path: str) -> int:
        return int(self.simulator.sim.stats()["by_path"].get(path, 0))

    async def token(self, app_id: str = APP_ID, secret: str = SECRET_KEY) -> str:
        answer = (
            await self.http.post(
                "/open/v1/access_token", json={"app_id": app_id, "secret_key": secret}
            )
        ).json()
        assert answer["code"] == 0, answer
        return str(answer["data"]["access_token"])


def config_for(tmp_path: Path, simulator: Simulator, **gateway: Any) -> Config:
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
    return parse_config(data, environ=daemon_env("http://127.0.0.1:9"))
