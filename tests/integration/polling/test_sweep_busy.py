"""Busy accounts: other applications' jobs push watched ones deeper than one sweep's budget
of pages reaches. Consecutive sweeps take turns over the pages, so every watched job is seen
(the budget goes where completions are to be found)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.integration.polling.test_sweep import DETAIL_PATH, LIST_PATH, T0, finish_polls, rig


async def test_consecutive_sweeps_reach_every_watched_job(tmp_path: Path) -> None:
    async with rig(tmp_path, qps=60, start=T0 - 200) as (r, _):
        # 60 calls a second, a sweep every 1/15 s: a budget of 4 calls, of which at most 3
        # go to list calls (pages full of watched jobs).
        interval = 1 / 15
        r.poller.settings = replace(r.poller.settings, min_interval=interval)
        r.sim.set_faults(list_page_cap=10)
        watched = []
        for i in range(60):  # one watched job, then one of another application's, ...
            watched.append(r.sim.add_job(f"w{i:03d}", queue_s=0, run_s=10_000))
            r.sim.add_job(f"other{i:03d}", queue_s=0, run_s=10_000)
            r.clock.advance(1)
        r.watch(watched)
        await r.poller.tick()  # one detail poll each (what a new watch gets)
        await finish_polls()
        assert r.calls(DETAIL_PATH) == 60

        for n in range(4):  # 120 jobs = 12 pages of 10, 3 a sweep
            await r.poller.sweep()
            assert r.calls(LIST_PATH) == 3 * (n + 1)
            r.clock.advance(interval)

        assert r.calls(DETAIL_PATH) == 60
        assert [r.row(j).polls for j in watched] == [2] * 60
        assert r.poller.sweep_results == {"ok": 1, "partial": 3, "refused": 0, "failed": 0}

        # The round starts again at the newest page (asking for the next page while it reads
        # one: the last round needed all twelve).
        await r.poller.sweep()
        assert r.calls(LIST_PATH) == 15
        assert r.row(watched[-1]).polls == 3
        assert r.row(watched[0]).polls == 2
