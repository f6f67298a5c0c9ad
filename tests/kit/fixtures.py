"""The fixtures the layers hand out, each under its fixture name (``simulator``, ``receiver``,
``workspace``, ``state_location``, ``make_store``): a layer's conftest imports those it needs
(the ``*_fixture`` functions), so a unit test cannot lean on a server by accident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit.cli import Workspace
from tests.kit.config import (
    ANALYTICS_SECRET,
    APP_ID,
    OPS_SECRET,
    SECRET_KEY,
    base_config,
    daemon_env,
)
from tests.kit.servers import ReceiverServer, Simulator
from tests.kit.store import StoreFactory


@pytest.fixture(name="state_location")
def state_location_fixture(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a test's state lives: a fresh SQLite file or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(name="make_store")
def make_store_fixture(state_location: str) -> Iterator[StoreFactory]:
    """Opens stores on this test's state (each call a new connection); closes them after."""
    opened: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = Store(state_location, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture(name="simulator")
def simulator_fixture() -> Iterator[Simulator]:
    sim = VendorSimulator(SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=7))
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[ReceiverServer]:
    rec = Receiver({"/ops": [OPS_SECRET], "/analytics": [ANALYTICS_SECRET]})
    with ServerThread(rec.make_app) as server:
        yield ReceiverServer(rec, server)


@pytest.fixture(name="workspace")
def workspace_fixture(
    tmp_path: Path, simulator: Simulator, receiver: ReceiverServer
) -> Iterator[Workspace]:
    ws = Workspace(
        tmp_path, base_config(tmp_path, simulator.url, receiver.url), daemon_env(receiver.url)
    )
    ws.write_config()
    ws.write_watch([])
    yield ws
    for proc in ws.processes:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)
