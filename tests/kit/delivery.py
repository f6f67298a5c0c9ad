"""Events ready to deliver, a dispatcher over given senders, and waiting for a dispatcher's
attempts to end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from notifier.delivery.dispatcher import Dispatcher, DispatcherSettings, Lanes
from notifier.delivery.senders import EndpointSettings
from notifier.delivery.transition import build_event
from notifier.models import Event, JobDetail
from notifier.store import Store
from tests.kit import FakeClock


def make_dispatcher(
    store: Store, lanes: Lanes, schedule: Sequence[float], **kwargs: Any
) -> Dispatcher:
    """A dispatcher whose lanes are the given senders ({endpoint: (sender, concurrency)}):
    its settings name those endpoints, and its sender source hands back the given ones, so a
    test picks its senders while the dispatcher is made from settings as the daemon makes it."""
    endpoints = tuple(
        EndpointSettings(name, "webhook", "http://127.0.0.1:1/", concurrency=concurrency)
        for name, (_sender, concurrency) in lanes.items()
    )

    def senders(wanted: Sequence[EndpointSettings]) -> Lanes:
        return {ep.name: lanes[ep.name] for ep in wanted}

    return Dispatcher(store, DispatcherSettings(tuple(schedule), endpoints), senders, **kwargs)


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
