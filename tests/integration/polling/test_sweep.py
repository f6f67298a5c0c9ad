"""List sweeps against the real simulator over HTTP on 127.0.0.1.

A real SQLite store, the real vendor client and rate limiter, and a Poller whose ``sweep()``
and ``tick()`` the tests call by hand (no scheduler, no daemon). Everything runs in the
test's own event loop. Vendor time, store time and poller time are one fake clock the test
moves, so job states do not drift while calls are in flight; only the limiter spaces calls
in real time (a few tenths of a second per test).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from notifier.polling.sweep import SWEEP_RETRY_FIRST
from tests.kit import T0
from tests.kit.sweep import (
    DETAIL_PATH,
    LIST_PATH,
    MIN_INTERVAL,
    FrontVendor,
    add_jobs,
    finish_polls,
    rig,
)

# --------------------------------------------------------------------------- coverage


async def test_one_sweep_covers_250_watched_jobs_in_three_list_calls(tmp_path: Path) -> None:
    async with rig(tmp_path, start=T0 - 100) as (r, _):
        # 100 older jobs nobody watches: the last page, which the sweep need not read.
        add_jobs(r.sim, "older", 100)
        r.clock.advance(100)
        # Watched jobs at varied points of their run: some queued, some about to finish
        # (their own plan would poll them again within a second), most half-way.
        watched = [
            r.sim.add_job(
                f"w{i:04d}",
                queue_s=1000 if i % 5 == 0 else 0,
                run_s=10.4 if i % 5 == 1 else 20 + i,
                outcome=20,
            )
            for i in range(250)
        ]
        r.clock.advance(5)
        # 30 newer ones nobody watches: they head the newest-first list.
        add_jobs(r.sim, "newer", 30)
        r.clock.advance(5)
        r.watch(watched)

        await r.poller.sweep()

        now = r.clock()
        stats = r.sim.stats()
        # 30 + 250 jobs, 100 a page: every watch seen after 3 pages, so no 4th page.
        assert stats["by_path"].get(LIST_PATH, 0) == 3
        assert stats["by_path"].get(DETAIL_PATH, 0) == 0
        assert r.poller.sweeps == 1
        vendor = r.vendor_view()
        assert {vendor[j]["status"] for j in watched} == {0, 10}  # the setup is what we meant
        assert len({vendor[j]["progress"] for j in watched}) > 20
        assert max(vendor[j]["progress"] for j in watched) >= 90
        for job_id in watched:
            row = r.row(job_id)
            assert row.polls == 1, job_id
            assert (row.status, row.progress) == (
                vendor[job_id]["status"],
                vendor[job_id]["progress"],
            ), job_id
            assert row.create_time == int(T0)
            assert row.last_poll_at == now
            # Not due before the next sweep has had its chance to look again.
            assert row.poll_key >= now + 2 * MIN_INTERVAL, job_id
        listed = r.store.list_watches()
        assert sorted(w["job_id"] for w in listed) == sorted(watched)
        assert all(w["state"] == "active" and w["polls"] == 1 for w in listed)


async def test_a_swept_terminal_job_gives_one_event_and_one_delivery(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        done = r.sim.add_job("done", queue_s=0, run_s=1, outcome=20)
        failed = r.sim.add_job("failed", queue_s=0, run_s=1, outcome=30, msg="audio too short")
        running = r.sim.add_job("running", queue_s=0, run_s=100)
        r.clock.advance(5)
        r.watch([done, failed, running])

        await r.poller.sweep()

        events = r.store.list_events()
        assert sorted((e["job_id"], e["type"]) for e in events) == [
            (done, "lip_sync.succeeded"),
            (failed, "lip_sync.failed"),
        ]
        deliveries = r.store.list_deliveries()
        assert len(deliveries) == 2
        assert {d["endpoint"] for d in deliveries} == {"ops"}
        assert {d["event_id"] for d in deliveries} == {e["event_id"] for e in events}
        assert {w["job_id"]: w["state"] for w in r.store.list_watches()} == {
            done: "succeeded",
            failed: "failed",
            running: "active",
        }
        assert r.poller.events == 2

        # The next sweep lists again (one job is still running) and sees both finished
        # jobs again: nothing new is recorded.
        r.clock.advance(MIN_INTERVAL)
        await r.poller.sweep()

        assert r.calls(LIST_PATH) == 2
        assert r.calls(DETAIL_PATH) == 0
        assert [e["event_id"] for e in r.store.list_events()] == [e["event_id"] for e in events]
        assert len(r.store.list_deliveries()) == 2
        assert r.poller.events == 2
        assert r.row(running).polls == 2


async def test_sweep_stops_paging_once_past_the_oldest_watched_job(tmp_path: Path) -> None:
    async with rig(tmp_path, qps=100, start=T0 - 1000) as (r, _):
        old = add_jobs(r.sim, "old", 500, queue_s=10_000)  # older, unwatched
        r.clock.advance(1000)
        new = add_jobs(r.sim, "new", 50, queue_s=0, run_s=100)
        r.clock.advance(5)
        r.watch(new)

        # One detail poll each teaches the store every watched job's create_time.
        await r.poller.tick()
        await finish_polls()
        assert r.calls(DETAIL_PATH) == 50
        assert {r.row(j).create_time for j in new} == {int(T0)}

        r.clock.advance(MIN_INTERVAL)
        await r.poller.sweep()

        # Page 1 holds all 50 watched jobs and then older ones: no second page.
        assert r.calls(LIST_PATH) == 1
        assert all(r.row(j).polls == 2 for j in new)

        # A watch just added for the oldest job (never polled: create_time unknown) cannot
        # keep the sweep paging through 500 unwatched jobs; the watched jobs' create_time
        # says page 1 already reaches past them. The new watch is left to a detail poll.
        r.watch([old[0]])
        r.clock.advance(MIN_INTERVAL)
        await r.poller.sweep()

        assert r.calls(LIST_PATH) == 2
        assert all(r.row(j).polls == 3 for j in new)
        late = r.row(old[0])
        assert late.polls == 0
        assert late.poll_key <= r.clock()  # due: the next tick polls it


async def test_sweep_spends_at_most_half_a_sweep_interval_of_budget(tmp_path: Path) -> None:
    # qps 4, min_interval 1 s: half of 4 calls → at most 2 list calls per sweep, or 3 (80 %)
    # while every page is full of watched jobs (one such call sees 100 jobs, a detail call 1).
    async with rig(tmp_path, qps=4) as (r, _):
        jobs = add_jobs(r.sim, "j", 350, queue_s=0, run_s=100)
        r.sim.add_job("unwatched", queue_s=0, run_s=100)
        r.clock.advance(5)
        r.watch(jobs)

        await r.poller.sweep()

        assert r.calls(LIST_PATH) == 3
        assert r.calls(DETAIL_PATH) == 0
        now = r.clock()
        newest, rest = set(jobs[51:]), set(jobs[:51])  # the list is newest first
        assert all(r.row(j).polls == 1 for j in newest)
        for job_id in rest:
            row = r.row(job_id)
            assert row.polls == 0 and row.status is None, job_id
            assert row.poll_key <= now, job_id  # still due for a detail poll

        # The next detail polls go to jobs the sweep did not reach.
        await r.poller.tick()
        await finish_polls()

        polled = {j for j, s in r.sim.stats()["jobs"].items() if s["detail_calls"]}
        assert len(polled) == 4  # one second of budget
        assert polled <= rest
        assert all(r.row(j).polls == 1 for j in polled)

    # Pages that hold few watched jobs stop at half the budget.
    async with rig(tmp_path / "sparse", qps=4) as (r, _):
        add_jobs(r.sim, "other", 350, queue_s=0, run_s=100)
        (watched,) = add_jobs(r.sim, "w", 1, queue_s=0, run_s=100)
        add_jobs(r.sim, "newer", 350, queue_s=0, run_s=100)
        r.clock.advance(5)
        r.watch([watched])
        await r.poller.sweep()
        assert r.calls(LIST_PATH) == 2


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("answer", ["404", "50000"])
async def test_a_broken_list_endpoint_pauses_sweeps_but_not_detail_polls(
    tmp_path: Path, answer: str
) -> None:
    async with rig(tmp_path, front=lambda url: FrontVendor(url, list_answer=answer)) as (
        r,
        front,
    ):
        assert front is not None
        jobs = add_jobs(r.sim, "j", 3, queue_s=0, run_s=100)
        r.clock.advance(5)
        r.watch(jobs)

        with capture_logs() as logs:
            await r.poller.sweep()

        assert front.list_calls == 1
        levels = [entry["log_level"] for entry in logs]
        assert not {"error", "critical", "exception"} & set(levels), logs
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "list sweep failed; detail polls carry on"
        ]
        assert r.poller.sweeps == 0
        assert all(r.row(j).polls == 0 for j in jobs)

        # Sweeping is paused: the next sweep (before the first backoff step) makes no list
        # call…
        await r.poller.sweep()
        r.clock.advance(SWEEP_RETRY_FIRST / 2)
        await r.poller.sweep()
        assert front.list_calls == 1

        # …while detail polls carry on and record progress.
        await r.poller.tick()
        await finish_polls()
        assert r.calls(DETAIL_PATH) == 3
        vendor = r.vendor_view()
        for job_id in jobs:
            row = r.row(job_id)
            assert row.polls == 1, job_id
            assert (row.status, row.progress) == (10, vendor[job_id]["progress"])

        # After the pause, sweeps try again.
        r.clock.advance(SWEEP_RETRY_FIRST)
        await r.poller.sweep()
        assert front.list_calls == 2


async def test_a_job_whose_detail_poll_is_in_flight_is_left_to_that_poll(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, front=FrontVendor) as (r, front):
        assert front is not None
        a, b, c = add_jobs(r.sim, "j", 3, queue_s=0, run_s=100)
        r.clock.advance(5)
        front.hold.add(c)
        r.watch([c])
        await r.poller.tick()  # c's detail poll goes out and is held at the vendor
        await asyncio.wait_for(front.held.wait(), timeout=10)
        assert r.poller.in_flight == 1
        r.watch([a, b])

        r.clock.advance(MIN_INTERVAL)
        await r.poller.sweep()

        assert front.list_calls == 1
        assert r.row(a).polls == r.row(b).polls == 1
        skipped = r.row(c)
        assert skipped.polls == 0 and skipped.status is None

        r.clock.advance(MIN_INTERVAL)
        front.release.set()
        await finish_polls()
        row = r.row(c)
        assert row.polls == 1
        assert (row.status, row.progress) == (10, r.vendor_view()[c]["progress"])
        detail_calls = {j: s["detail_calls"] for j, s in r.sim.stats()["jobs"].items()}
        assert detail_calls == {a: 0, b: 0, c: 1}


# --------------------------------------------------------------------------- fairness


async def test_sweep_sets_the_round_robin_cap_from_the_load(tmp_path: Path) -> None:
    async with rig(tmp_path, qps=10) as (r, _):
        jobs = add_jobs(r.sim, "j", 300, queue_s=0, run_s=1000)
        r.clock.advance(5)
        r.watch(jobs)
        assert r.poller.settings.fair_interval == 0

        await r.poller.sweep()

        # 300 jobs at 10 calls a second: round-robin gets to each every 30 s.
        assert r.poller.settings.fair_interval == 30
        now = r.clock()
        assert all(r.row(j).poll_key <= now + 30 for j in jobs)

        # Fewer jobs, shorter turns; never below min_interval.
        r.store.remove_watches(jobs[100:])
        await r.poller.sweep()
        assert r.poller.settings.fair_interval == 10
        r.store.remove_watches(jobs[5:100])
        await r.poller.sweep()
        assert r.poller.settings.fair_interval == MIN_INTERVAL
