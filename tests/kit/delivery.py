"""Events ready to deliver, and waiting for a dispatcher's attempts to end."""

from __future__ import annotations

import asyncio

from notifier.delivery.transition import build_event
from notifier.models import Event, JobDetail
from tests.kit import FakeClock


def finished(job_id: str, clock: FakeClock) -> tuple[JobDetail, Event]:
    detail = JobDetail(job_id, 20, 100, "success", "https://v/1.mp4", "", 1000, 1_738_636_800)
    return detail, build_event(detail, {}, clock.now)


async def attempts_done(timeout: float = 15.0) -> None:
    """Wait until no delivery attempt is running (the kicks they cause included)."""
    async with asyncio.timeout(timeout):
        while True:
            await asyncio.sleep(0)  # let a pending kick start its attempts
            tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("deliver ")]
            if not tasks:
                return
            await asyncio.wait(tasks)
