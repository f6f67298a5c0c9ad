"""The last observation of a watched job, as the vendor sent it: recorded by detail polls
and by list sweeps alike (real simulator, real store; see test_sweep for the rig)."""

from __future__ import annotations

from pathlib import Path

from notifier.store import Observation
from tests.kit.sweep import DETAIL_PATH, LIST_PATH, Rig, finish_polls, rig

DETAIL_FIELDS = {
    "id",
    "status",
    "progress",
    "msg",
    "video_url",
    "preview_url",
    "duration",
    "create_time",
}


async def test_detail_polls_and_sweeps_record_the_vendors_data(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        polled = r.sim.add_job("polled", queue_s=0, run_s=100)
        swept = r.sim.add_job("swept", queue_s=0, run_s=1, outcome=30, msg="audio too short")
        r.clock.advance(5)
        r.watch([polled])
        await r.poller.tick()
        await finish_polls()
        check(r, polled, "active")
        assert r.calls(LIST_PATH) == 0  # that was the detail poll's

        r.watch([swept])
        r.clock.advance(1)
        await r.poller.sweep()
        assert r.calls(DETAIL_PATH) == 1  # and these the sweep's
        check(r, polled, "active")
        seen = check(r, swept, "failed")
        assert seen.data is not None and seen.data["msg"] == "audio too short"


def check(r: Rig, job_id: str, state: str) -> Observation:
    """The observation is what the vendor says now, recorded now."""
    seen = r.store.last_observation(job_id)
    assert seen is not None and seen.state == state, job_id
    assert seen.data is not None and set(seen.data) >= DETAIL_FIELDS, job_id
    vendor = r.vendor_view()[job_id]
    assert seen.data == {k: vendor[k] for k in seen.data}, job_id
    assert seen.status == seen.data["status"] and seen.observed_at == r.clock()
    return seen
