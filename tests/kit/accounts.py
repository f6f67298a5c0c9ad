"""Two vendor accounts as the acceptance tests run them: the simulator serving the test
config's account and ``shop`` (its own credentials, a budget of 5 a second, its own jobs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from notifier.service.http_server import ServerThread
from notifier.tools.simulator import SimAccount, SimConfig, VendorSimulator
from tests.kit.config import APP_ID, SECRET_KEY
from tests.kit.servers import Simulator

SHOP_APP, SHOP_SECRET = "shop-app", "sk-shop-5a1e7c9d"
SHOP_QPS = 5


@contextlib.contextmanager
def two_account_simulator(seed: int = 7) -> Iterator[Simulator]:
    """The simulator with the test config's account (``APP_ID``, 10 a second) and shop's."""
    shop = SimAccount(SHOP_APP, SHOP_SECRET, qps=SHOP_QPS)
    sim = VendorSimulator(
        SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=seed, accounts=(shop,))
    )
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)
