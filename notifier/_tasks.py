"""Shutdown helper shared by the poller and the dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


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
