"""The gateway tests' fixtures (the door: see tests/kit/gateway.py), on both backends: one
account, or two on one simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.kit import Simulator, StoreFactory
from tests.kit.gateway import Door, config_for, open_door, serve_two_accounts


@pytest.fixture
async def door(
    tmp_path: Path, simulator: Simulator, make_store: StoreFactory
) -> AsyncIterator[Door]:
    async with open_door(make_store(), simulator, config_for(tmp_path, simulator)) as opened:
        yield opened


@pytest.fixture
def two_simulator() -> Iterator[Simulator]:
    with serve_two_accounts() as simulator:
        yield simulator


@pytest.fixture
async def doors(
    tmp_path: Path, two_simulator: Simulator, make_store: StoreFactory
) -> AsyncIterator[Door]:
    """The gateway of two accounts, ``alpha`` (default) and ``beta``."""
    config = config_for(tmp_path, two_simulator, accounts=True)
    async with open_door(make_store(), two_simulator, config) as opened:
        yield opened
