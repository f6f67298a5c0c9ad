"""List sweeps per kind against the real simulator (issue 21, item 5): every kind with a list
call is swept with its own call (video's capitalised keys, AI creation by its watched ids), under
the one budget; TTS, which has none, is left to detail polls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from notifier import kinds
from notifier.models import WatchSpec
from tests.kit.poller import Rig
from tests.kit.sweep import finish_polls

Make = Callable[..., Awaitable[Rig]]


def _watch(rig: Rig, kind: str, count: int, **job: object) -> list[str]:
    job = {"queue_s": 0, "run_s": 0, **job}
    ids = [rig.sim.add_job(kind=kind, **job) for _ in range(count)]  # type: ignore[arg-type]
    rig.store.add_watches([WatchSpec(i, kind=kind) for i in ids], "queue")
    return ids


def _paths(rig: Rig) -> dict[str, int]:
    return dict(rig.sim.stats()["by_path"])


async def test_one_sweep_sees_every_listed_kind_and_no_detail_call_is_made(make_rig: Make) -> None:
    rig = await make_rig()
    rig.poller.list_sweep = True
    rig.poller.subscriptions = [("ops", list(kinds.JOB_EVENT_TYPES))]
    listed = [k for k in kinds.KINDS.values() if k.listing is not None]
    ids = {k.name: _watch(rig, k.name, 3) for k in listed}
    tts = _watch(rig, "tts", 2)
    await rig.poller.sweep()
    states = {(w["kind"], w["job_id"]): w["state"] for w in rig.store.list_watches()}
    for kind, job_ids in ids.items():
        assert {states[kind, j] for j in job_ids} == {"succeeded"}, kind
    assert {states["tts", j] for j in tts} == {"active"}  # no list call: polled one by one
    paths = _paths(rig)
    for kind in listed:
        assert kind.listing is not None
        assert paths.get(kind.listing.path) == 1, (kind.name, paths)
        assert paths.get(kind.poll.path, 0) == 0, (kind.name, paths)
    events = {(e["job_id"], e["type"]) for e in rig.store.list_events()}
    assert events == {(j, f"{k}.succeeded") for k, js in ids.items() for j in js}


async def test_ai_creation_ids_take_turns_when_they_are_more_than_its_share(make_rig: Make) -> None:
    # qps 4, min_interval 1 s: a sweep may make 2 calls, 100 ids; 120 take two sweeps.
    rig = await make_rig(qps=4)
    rig.poller.list_sweep = True
    rig.poller.subscriptions = [("ops", list(kinds.JOB_EVENT_TYPES))]
    ids = _watch(rig, "ai_creation", 120)
    listing = kinds.AI_CREATION.listing
    assert listing is not None
    await rig.poller.sweep()
    done = {w["job_id"] for w in rig.store.list_watches() if w["state"] == "succeeded"}
    assert len(done) == 100 and _paths(rig)[listing.path] == 2
    assert rig.poller.sweep_results["partial"] == 1
    await rig.poller.sweep()
    done = {w["job_id"] for w in rig.store.list_watches() if w["state"] == "succeeded"}
    assert done == set(ids)
    assert _paths(rig)[listing.path] == 3
    assert rig.poller.sweep_results["ok"] == 1


async def test_every_watched_kind_gets_a_call_when_the_budget_is_small(make_rig: Make) -> None:
    """qps 2: the sweep budget is one call, split by active watches (90% video); each kind
    still gets one, so the busy kind does not take the other's turn."""
    rig = await make_rig(qps=2)
    rig.poller.list_sweep = True
    rig.poller.subscriptions = [("ops", list(kinds.JOB_EVENT_TYPES))]
    _watch(rig, "video", 27)
    _watch(rig, "lip_sync", 3)
    await rig.poller.sweep()
    paths = _paths(rig)
    assert kinds.VIDEO.listing is not None and kinds.LIP_SYNC.listing is not None
    assert paths[kinds.VIDEO.listing.path] == 1
    assert paths[kinds.LIP_SYNC.listing.path] == 1
    assert rig.store.live_counts()[0] == 0  # both kinds finished in the one sweep


async def test_a_video_watch_given_up_expires_as_a_video(make_rig: Make) -> None:
    """Past give_up_after, one more look that says it is still running ends it with
    ``video.expired``, on the video watch (not on a lip-sync one of that id)."""
    from dataclasses import replace

    from tests.kit.waits import until

    rig = await make_rig()
    rig.poller.subscriptions = [("ops", list(kinds.JOB_EVENT_TYPES))]
    rig.poller.settings = replace(rig.poller.settings, give_up_after=0.0)
    (job_id,) = _watch(rig, "video", 1, run_s=3600)
    await rig.poller.expire()  # made due for its last look
    await rig.poller.tick()
    assert await until(lambda: bool(rig.store.list_events()), 10)
    ((event_job, event_type),) = {(e["job_id"], e["type"]) for e in rig.store.list_events()}
    assert (event_job, event_type) == (job_id, "video.expired")
    (watch,) = rig.store.list_watches()
    assert (watch["kind"], watch["state"]) == ("video", "expired")


async def test_one_id_under_two_kinds_is_two_polls_each_kept_track_of(make_rig: Make) -> None:
    """Polls in flight are keyed by kind and id: twins chosen in one tick are both tracked
    (and both counted), and each poll records its own kind's answer."""
    rig = await make_rig()
    rig.poller.subscriptions = [("ops", list(kinds.JOB_EVENT_TYPES))]
    twin = "7" * 19
    rig.sim.add_job(twin, queue_s=0, run_s=0)
    rig.sim.add_job(twin, kind="video", queue_s=0, run_s=0, outcome="failed")
    rig.store.add_watches([WatchSpec(twin), WatchSpec(twin, kind="video")], "queue")
    await rig.poller.tick()
    assert rig.poller.in_flight == 2
    assert rig.poller.polling(twin) and rig.poller.polling(twin, "video")
    await finish_polls()
    assert rig.poller.in_flight == 0
    states = {w["kind"]: w["state"] for w in rig.store.list_watches()}
    assert states == {"lip_sync": "succeeded", "video": "failed"}
    assert sorted(e["type"] for e in rig.store.list_events()) == [
        "lip_sync.succeeded",
        "video.failed",
    ]
