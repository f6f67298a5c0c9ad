"""A scrape reads what the event loop owns on the loop, and only the store on its worker
thread (issue 8, defect 11: the limiter's deque was walked from a thread while the loop
changed it)."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.service.http_server import AppServer
from notifier.service.metrics import Metrics, make_app


async def test_loop_owned_numbers_are_read_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    limiter = RateLimiter(LimiterSettings(10))
    seen: dict[str, int] = {}

    def snapshot() -> dict[str, Any]:
        seen["snapshot"] = threading.get_ident()
        return {"watches": {}, "deliveries": {}}

    def live() -> dict[str, Any]:
        seen["live"] = threading.get_ident()
        return {
            "lanes": {
                "default": {
                    "budget_in_use": limiter.in_use(),
                    "qps": limiter.qps,
                    "polls_in_flight": 0,
                }
            },
            "results_unrecorded": 0,
            "state_writable": 1,
        }

    metrics = Metrics()
    metrics.watch_state(snapshot, live)
    server = AppServer(make_app(metrics, lambda: (True, "ok")))
    await server.start()
    try:
        for _ in range(3):
            await limiter.acquire()
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{server.url}/metrics")).text
    finally:
        await server.stop()
    assert seen["live"] == loop_thread
    assert seen["snapshot"] != loop_thread  # counting history stays off the loop
    assert 'chanjing_budget_in_use{account="default"} ' in text
    assert 'chanjing_budget_qps{account="default"} 10.0' in text
