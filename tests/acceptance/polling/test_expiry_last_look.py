"""Watches past ``give_up_after`` get a last look before they expire (issue 8, item 6).

A daemon that was down for longer than ``give_up_after`` used to expire every watch on start,
so jobs that finished meanwhile were never reported.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.kit import Simulator, Workspace
from tests.kit.sweep import add_jobs, finish_polls, rig

GIVE_UP_AFTER = 3600.0


@pytest.mark.parametrize("list_sweep", [False, True])
async def test_jobs_finished_during_an_outage_are_reported_before_expiry(
    tmp_path: Path, list_sweep: bool
) -> None:
    async with rig(tmp_path) as (r, _):
        r.poller.settings = replace(r.poller.settings, give_up_after=GIVE_UP_AFTER)
        r.poller.list_sweep = list_sweep
        finished = add_jobs(r.sim, "done", 8, queue_s=0, run_s=600)
        running = add_jobs(r.sim, "slow", 8, queue_s=0, run_s=10 * GIVE_UP_AFTER)
        r.watch(finished + running)
        # No daemon for two hours: nothing polled them; the first eight finished meanwhile.
        r.clock.advance(2 * GIVE_UP_AFTER)

        await r.poller.expire()

        assert r.store.watch_counts()["expired"] == 0
        assert all(r.row(j).poll_key <= r.clock() for j in finished + running)

        await r.poller.sweep()
        for _ in range(3):  # 10 polls a tick: two ticks look at the sixteen
            await r.poller.tick()
            await finish_polls()
        await r.poller.expire()

        events = {e["job_id"]: e["type"] for e in r.store.list_events()}
        assert events == {
            **dict.fromkeys(finished, "lip_sync.succeeded"),
            **dict.fromkeys(running, "lip_sync.expired"),
        }
        states = {w["job_id"]: w["state"] for w in r.store.list_watches()}
        assert states == {
            **dict.fromkeys(finished, "succeeded"),
            **dict.fromkeys(running, "expired"),
        }
        for watch in r.store.list_watches("expired"):
            assert "give_up_after" in watch["last_error"]
            assert watch["status"] == 10  # the last look saw it still generating


async def test_a_failed_last_look_does_not_expire(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.poller.settings = replace(r.poller.settings, give_up_after=GIVE_UP_AFTER)
        r.poller.list_sweep = False
        (job,) = add_jobs(r.sim, "done", 1, queue_s=0, run_s=600)
        r.watch([job])
        r.clock.advance(2 * GIVE_UP_AFTER)
        r.sim.set_faults(fault_50000=1.0)

        await r.poller.expire()
        await r.poller.tick()
        await finish_polls()
        await r.poller.expire()

        assert r.row(job).errors == 1
        assert r.store.watch_counts()["expired"] == 0

        r.sim.set_faults(fault_50000=0.0)
        r.clock.advance(r.poller.settings.max_interval)
        await r.poller.tick()
        await finish_polls()
        assert [e["job_id"] for e in r.store.list_events()] == [job]


@pytest.mark.slow
def test_daemon_started_after_a_long_outage_reports_what_finished(
    workspace: Workspace, simulator: Simulator
) -> None:
    done = [simulator.sim.add_job(f"done{i:02d}", queue_s=0, run_s=0) for i in range(16)]
    slow = [simulator.sim.add_job(f"slow{i:02d}", queue_s=0, run_s=1e6) for i in range(4)]
    workspace.cli("watch", "add", *done, *slow)
    # The watches were added two hours ago (give_up_after is 1 h) and no daemon ran since.
    with sqlite3.connect(workspace.state_path) as db:
        db.execute("UPDATE watches SET added_at = added_at - 7200, poll_key = poll_key - 7200")
        db.execute("UPDATE watches SET next_poll_at = next_poll_at - 7200")

    daemon = workspace.start()
    daemon.wait_ready()
    expected = {*done, *slow}
    assert daemon.wait_for_log(
        lambda _r: (
            {
                w["job_id"]
                for w in workspace.cli_json("watch", "list")
                if w["state"] in ("succeeded", "expired")
            }
            == expected
        ),
        timeout=30,
    ), daemon.output
    assert daemon.stop() == 0
    states = {w["job_id"]: w["state"] for w in workspace.cli_json("watch", "list")}
    assert states == {**dict.fromkeys(done, "succeeded"), **dict.fromkeys(slow, "expired")}
    events = {e["job_id"]: e["type"] for e in workspace.cli_json("events", "list")}
    assert events == {
        **dict.fromkeys(done, "lip_sync.succeeded"),
        **dict.fromkeys(slow, "lip_sync.expired"),
    }
