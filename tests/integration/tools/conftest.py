"""Fixtures of the tools tests: the vendor simulator on a fake clock, over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from notifier.service.http_server import ServerThread
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import FakeClock
from tests.kit.vendor import Vendor


@pytest.fixture
def vendor_factory() -> Iterator[Callable[..., Vendor]]:
    started: list[Vendor] = []

    def start(**config: Any) -> Vendor:
        clock = FakeClock()
        sim = VendorSimulator(SimConfig(**config), clock=clock)
        server = ServerThread(sim.make_app).start()
        vendor = Vendor(sim, server, clock)
        started.append(vendor)
        return vendor

    yield start
    for vendor in started:
        vendor.http.close()
        vendor.server.stop()


@pytest.fixture
def vendor(vendor_factory: Callable[..., Vendor]) -> Vendor:
    return vendor_factory()
