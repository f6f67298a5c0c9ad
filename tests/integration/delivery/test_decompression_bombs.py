"""Issue 18: a receiver (or the vendor) answering ``Content-Encoding: gzip, gzip`` with a
2 KB body took the daemon from 72 MB to 2.17 GB: httpx inflated every layer before the 1 KB
read limit applied. Real servers on 127.0.0.1 send such bombs; the memory a call takes is
measured with tracemalloc (Python's allocations, zlib's output included)."""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from notifier.delivery.senders import WebhookSender
from notifier.models import Event
from notifier.polling.vendor import VendorError
from notifier.service.http_server import AppServer
from notifier.store import Store
from tests.kit import OPS_SECRET
from tests.kit.vendor import vendor_client

#: 256 MiB of zeros, gzipped twice: a few hundred bytes on the wire.
INFLATED = 256 * 1024 * 1024
#: What a call may allocate at its peak, whatever the answer claims to hold.
PEAK_LIMIT = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    once = gzip.compress(b"\0" * INFLATED, compresslevel=9)
    return {"gzip": once, "gzip, gzip": gzip.compress(once, compresslevel=9)}


@pytest.fixture
async def bomber(bombs: dict[str, bytes]) -> AsyncIterator[str]:
    """``/double/…`` answers two gzip layers, ``/single/…`` one."""

    async def answer(request: web.Request) -> web.Response:
        encoding = "gzip" if request.path.startswith("/single") else "gzip, gzip"
        return web.Response(
            status=200,
            body=bombs[encoding],
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = AppServer(app)
    await server.start()
    yield server.url
    await server.stop()


def _peak_during(start: float) -> tuple[int, float]:
    _current, peak = tracemalloc.get_traced_memory()
    return peak, time.monotonic() - start


async def test_a_receivers_bomb_costs_a_kilobyte_not_gigabytes(bomber: str) -> None:
    event = Event("evt_bomb", "job-bomb", "lip_sync.succeeded", 0.0, b'{"type": "x"}')
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, f"{bomber}/double/ops", [OPS_SECRET], 10.0)
        tracemalloc.start()
        try:
            result = await sender.send(event)
            peak, _took = _peak_during(time.monotonic())
        finally:
            tracemalloc.stop()
    assert result.ok  # a 200 is a 200, whatever its body
    assert peak < PEAK_LIMIT, peak


@pytest.mark.parametrize(
    ("layers", "why"), [("single", "over .* bytes once decoded"), ("double", "encoding")]
)
async def test_a_vendors_bomb_is_a_bad_answer_not_gigabytes(
    bomber: str, tmp_path: Path, layers: str, why: str
) -> None:
    store = Store(tmp_path / "state.db")
    vendor = vendor_client(f"{bomber}/{layers}", store)
    tracemalloc.start()
    try:
        with pytest.raises(VendorError, match=why):
            await vendor.token()
        peak, _took = _peak_during(time.monotonic())
    finally:
        tracemalloc.stop()
        await vendor.aclose()
        store.close()
    assert peak < PEAK_LIMIT, peak
