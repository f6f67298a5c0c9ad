"""Busy accounts: other applications' jobs push watched ones deeper than one sweep's budget
of pages reaches. Consecutive sweeps take turns over the pages, so every watched job is seen
(the budget goes where completions are to be found)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from tests.kit import T0
from tests.kit.sweep import DETAIL_PATH, LIST_PATH, FrontVendor, finish_polls, rig


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


async def test_rounds_start_after_pages_of_only_newer_jobs(tmp_path: Path) -> None:
    async with rig(tmp_path, qps=10, start=T0 - 100) as (r, _):
        r.sim.set_faults(list_page_cap=10)
        r.sim.add_job("older", queue_s=0, run_s=10_000)
        r.clock.advance(10)
        watched = [r.sim.add_job(f"w{i:02d}", queue_s=0, run_s=10_000) for i in range(10)]
        r.clock.advance(10)
        for i in range(30):  # three pages of other applications' newer jobs
            r.sim.add_job(f"other{i:02d}", queue_s=0, run_s=10_000)
        r.clock.advance(10)
        r.watch(watched)
        await r.poller.tick()  # teaches the store their create_time
        await finish_polls()

        await r.poller.sweep()  # pages 1-3 (newer only), 4 (every watched job: stop)
        assert r.calls(LIST_PATH) == 4
        assert [r.row(j).polls for j in watched] == [2] * 10

        await r.poller.sweep()  # starts at page 4
        assert r.calls(LIST_PATH) == 5
        assert [r.row(j).polls for j in watched] == [3] * 10

        # Ten more jobs of other applications push the watched ones a page deeper: the
        # round that starts at page 4 finds only newer jobs there and carries on.
        for i in range(10):
            r.sim.add_job(f"later{i:02d}", queue_s=0, run_s=10_000)
        r.clock.advance(1)
        await r.poller.sweep()
        assert r.calls(LIST_PATH) == 7
        assert [r.row(j).polls for j in watched] == [4] * 10
        assert r.poller.sweep_results["partial"] == 0


async def test_a_swept_completion_is_recorded_while_a_detail_poll_waits(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, front=FrontVendor) as (r, front):
        assert front is not None
        job = r.sim.add_job("done", queue_s=0, run_s=1)
        front.hold.add(job)
        r.watch([job])
        await r.poller.tick()  # its detail poll goes out and is held at the vendor
        await asyncio.wait_for(front.held.wait(), timeout=10)
        (poll,) = [t for t in asyncio.all_tasks() if t.get_name() == f"poll lip_sync {job}"]
        r.clock.advance(2)

        await r.poller.sweep()
        await asyncio.wait([poll], timeout=10)

        assert [(e["job_id"], e["type"]) for e in r.store.list_events()] == [
            (job, "lip_sync.succeeded")
        ]
        assert poll.cancelled()  # the waiting poll was called off
        assert r.poller.in_flight == 0
        front.release.set()
        assert len(r.store.list_deliveries()) == 1


async def test_a_lagging_list_does_not_set_a_job_back(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.sim.set_faults(list_lag_s=5)
        job = r.sim.add_job("j", queue_s=0, run_s=100)
        r.clock.advance(20)
        r.watch([job])
        await r.poller.tick()
        await finish_polls()
        polled = r.row(job)
        assert (polled.status, polled.progress) == (10, 21)

        await r.poller.sweep()  # the list shows it as 5 s ago: 16 %

        row = r.row(job)
        assert (row.status, row.progress, row.polls) == (10, 21, 1)
        assert r.calls(LIST_PATH) == 1

        r.clock.advance(10)  # now the list shows 26 %: news
        await r.poller.sweep()
        assert (r.row(job).progress, r.row(job).polls) == (26, 2)
