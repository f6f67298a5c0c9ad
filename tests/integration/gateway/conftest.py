"""The gateway tests' fixtures (the door: see tests/kit/gateway.py), on both backends: one
account, or two on one simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from notifier.service.http_server import ServerThread
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import APP_ID, SECRET_KEY, Simulator, StoreFactory
from tests.kit.gateway import BETA, Door, config_for, open_door


@pytest.fixture
async def door(
    tmp_path: Path, simulator: Simulator, make_store: StoreFactory
) -> AsyncIterator[Door]:
    async with open_door(make_store(), simulator, config_for(tmp_path, simulator)) as opened:
        yield opened


@pytest.fixture
def two_simulator() -> Iterator[Simulator]:
    """The simulator fixture's account and :data:`BETA`, each with its own budget."""
    config = SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=7, accounts=(BETA,))
    sim = VendorSimulator(config)
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


@pytest.fixture
async def doors(
    tmp_path: Path, two_simulator: Simulator, make_store: StoreFactory
) -> AsyncIterator[Door]:
    """The gateway of two accounts, ``alpha`` (default) and ``beta``."""
    config = config_for(tmp_path, two_simulator, accounts=True)
    async with open_door(make_store(), two_simulator, config) as opened:
        yield opened
