"""Helpers shared by the poller and the dispatcher: shutdown, and the steady clock.

``steady_clock`` lives here, below both stages, because the vendor lease (polling) and the
delivery claims (delivery) keep their deadlines on the same clock and delivery may not import
polling (tests/unit/test_layout.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def steady_clock() -> float:
    """Seconds on a clock that never steps and keeps running through a suspend
    (CLOCK_BOOTTIME; CLOCK_MONOTONIC where there is none). A deadline kept on it has passed
    when a suspended host wakes up, where one on CLOCK_MONOTONIC would have paused."""
    return time.monotonic() if _BOOTTIME is None else time.clock_gettime(_BOOTTIME)


async def settle(tasks: Iterable[asyncio.Task[None]], grace: float) -> None:
    """Give ``tasks`` up to ``grace`` seconds to finish, then cancel what is left."""
    pending_tasks = [task for task in tasks if not task.done()]
    if not pending_tasks:
        return
    _done, pending = await asyncio.wait(pending_tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
