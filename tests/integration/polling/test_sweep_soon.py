"""Sweeps asked for early (the gateway's, for watched jobs seen too long ago) coalesce with
the scheduled one: one at a time, and not again within half a ``min_interval``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from notifier.models import WatchSpec
from tests.kit.poller import Rig

LIST = "/open/v1/video_lip_sync/list"


async def test_sweeps_at_once_are_one_and_early_ones_are_spaced(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig()
    jobs = [rig.sim.add_job(queue_s=0, run_s=3600) for _ in range(3)]
    rig.store.add_watches([WatchSpec(j) for j in jobs], "queue")
    rig.poller.list_sweep = True

    def lists() -> int:
        return int(rig.sim.stats()["by_path"].get(LIST, 0))

    await asyncio.gather(rig.poller.sweep(), rig.poller.sweep_soon(), rig.poller.sweep_soon())
    assert lists() == 1
    await rig.poller.sweep_soon()  # within half a min_interval of the last: nothing
    assert lists() == 1
    await rig.poller.sweep()  # the scheduled one always runs
    assert lists() == 2
    for job in jobs:
        seen = rig.store.last_observation(job)
        assert seen is not None and seen.data is not None
