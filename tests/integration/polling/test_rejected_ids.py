"""A 40000 for a job id fails its watch only after several rejections over minutes (issue 8,
item 7): a vendor that briefly answers "not found" right after creating a job must not lose it.
"""

from __future__ import annotations

from pathlib import Path

from notifier.polling.poller import REJECT_RETRY, REJECT_WINDOW
from tests.integration.polling.test_sweep import DETAIL_PATH, Rig, finish_polls, rig


async def poll_once(r: Rig) -> None:
    await r.poller.tick()
    await finish_polls()


async def test_a_job_unknown_for_its_first_two_polls_is_still_reported(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.poller.list_sweep = False
        job = r.sim.add_job("late", queue_s=0, run_s=300, reject_first_calls=2)
        r.watch([job])

        await poll_once(r)
        (watch,) = r.store.list_watches()
        assert watch["state"] == "active"
        assert watch["rejections"] == 1
        assert watch["msg"].startswith("vendor rejected the id 1x since ")
        assert watch["msg"].endswith(": record not found")

        # The second look comes soon, and is rejected again: still active.
        r.clock.advance(REJECT_RETRY)
        await poll_once(r)
        (watch,) = r.store.list_watches()
        assert (watch["state"], watch["rejections"]) == ("active", 2)
        assert "rejected the id 2x since" in watch["msg"]

        # Not asked again before REJECT_WINDOW after the first rejection.
        r.clock.advance(REJECT_WINDOW - REJECT_RETRY - 1)
        await poll_once(r)
        assert r.calls(DETAIL_PATH) == 2
        r.clock.advance(1)
        await poll_once(r)
        assert r.calls(DETAIL_PATH) == 3

        # Now the vendor knows it: the count is reset, and its completion is reported.
        (watch,) = r.store.list_watches()
        assert (watch["state"], watch["rejections"], watch["status"]) == ("active", 0, 10)
        assert not (watch["last_error"] or "").startswith("vendor rejected")
        r.clock.advance(300)
        for _ in range(5):
            r.clock.advance(r.poller.settings.max_interval)
            await poll_once(r)
            if r.store.list_events():
                break
        assert [(e["job_id"], e["type"]) for e in r.store.list_events()] == [
            (job, "lip_sync.succeeded")
        ]


async def test_an_id_rejected_three_times_over_two_minutes_fails(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.poller.list_sweep = False
        r.watch(["nosuchjob"])

        await poll_once(r)
        r.clock.advance(REJECT_RETRY)
        await poll_once(r)
        assert r.store.list_watches()[0]["state"] == "active"
        r.clock.advance(REJECT_WINDOW - REJECT_RETRY)
        await poll_once(r)

        (watch,) = r.store.list_watches()
        assert watch["state"] == "failed"
        assert watch["msg"].startswith("vendor rejected the id 3x since ")
        assert r.calls(DETAIL_PATH) == 3
        assert r.store.list_events() == []

        # Failed for good: no more calls.
        r.clock.advance(3600)
        await poll_once(r)
        assert r.calls(DETAIL_PATH) == 3


async def test_a_sweep_that_lists_the_job_clears_its_rejections(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        job = r.sim.add_job("hidden", queue_s=0, run_s=100, reject_for_s=3)
        r.watch([job])
        await r.poller.sweep()  # not listed yet
        await poll_once(r)
        assert r.store.list_watches()[0]["rejections"] == 1

        r.clock.advance(3)
        await r.poller.sweep()  # listed now
        (watch,) = r.store.list_watches()
        assert (watch["state"], watch["rejections"], watch["status"]) == ("active", 0, 10)
