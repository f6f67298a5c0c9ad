"""Bounded waits on conditions no event announces (a file, a counter, an HTTP answer): one
for a thread, one for a coroutine. Where an event exists, wait on it instead."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], timeout: float) -> bool:
    """Look every 50 ms whether ``condition()`` holds; False once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.05)
    return True


async def until(predicate: Callable[[], Any], timeout: float = 20.0) -> bool:
    """Let the running loop work until ``predicate()`` holds; AssertionError after
    ``timeout`` (the loop's time, so a virtual-time loop times out in virtual seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return True
