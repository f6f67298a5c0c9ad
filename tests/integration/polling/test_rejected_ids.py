"""A 40000 for a job id gives its watch up only after several rejections over minutes (issue 8,
item 7): a vendor that briefly answers "not found" right after creating a job must not lose it.
Then the watch is `rejected`, with one `lip_sync.rejected` event (issue 18, item 7b).
"""

from __future__ import annotations

from pathlib import Path

from notifier.config.sections import WebhookEndpoint
from notifier.delivery.transition import job_event_id
from notifier.models import WatchSpec
from notifier.polling.poller import REJECT_RETRY, REJECT_WINDOW
from tests.kit import OPS_SECRET
from tests.kit.sweep import DETAIL_PATH, Rig, finish_polls, rig


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


def default_endpoints() -> list[tuple[str, list[str]]]:
    """Two endpoints with the default ``events`` (as the daemon routes them), and one that
    takes only successes."""
    made = [
        WebhookEndpoint.model_validate(
            {"name": name, "type": "webhook", "url": "http://127.0.0.1:9/h", "secret": [OPS_SECRET]}
        )
        for name in ("ops", "analytics")
    ]
    return [(ep.name, list(ep.event_types())) for ep in made] + [("wins", ["lip_sync.succeeded"])]


async def test_an_id_rejected_three_times_over_two_minutes_is_rejected_with_an_event(
    tmp_path: Path,
) -> None:
    # Issue 18, item 7b: a mistyped id ended as `failed` with no event, so the application
    # waited forever. Now it ends `rejected`, with one lip_sync.rejected event.
    async with rig(tmp_path) as (r, _):
        r.poller.list_sweep = False
        r.poller.subscriptions = default_endpoints()
        r.store.add_watches([WatchSpec("nosuchjob", {"order": "o-7"})], "queue")

        await poll_once(r)
        r.clock.advance(REJECT_RETRY)
        await poll_once(r)
        assert r.store.list_watches()[0]["state"] == "active"
        assert r.store.list_events() == []
        r.clock.advance(REJECT_WINDOW - REJECT_RETRY)
        await poll_once(r)

        (watch,) = r.store.list_watches()
        assert watch["state"] == "rejected"
        note = "unknown to the vendor: record not found (3x in 120s)"
        assert watch["last_error"] == watch["msg"] == note
        assert r.calls(DETAIL_PATH) == 3
        (event,) = r.store.list_events()
        assert (event["job_id"], event["type"]) == ("nosuchjob", "lip_sync.rejected")
        (body,) = r.store.events_after(None, 10) or []
        assert (body["id"], body["type"]) == (event["event_id"], "lip_sync.rejected")
        assert body["data"] == {
            "id": "nosuchjob",
            "status": 0,
            "progress": 0,
            "msg": "record not found",
            "video_url": "",
            "preview_url": "",
            "duration": 0,
            "create_time": 0,
            "labels": {"order": "o-7"},
            "account": "default",
            "rejections": 3,
        }
        deliveries = r.store.list_deliveries()
        assert sorted(d["endpoint"] for d in deliveries) == ["analytics", "ops"]
        assert {d["event_id"] for d in deliveries} == {event["event_id"]}
        assert r.poller.events == 1

        # Rejected for good: no more calls, no second event.
        r.clock.advance(3600)
        await poll_once(r)
        assert r.calls(DETAIL_PATH) == 3
        assert len(r.store.list_events()) == 1
        assert r.store.watch_counts()["rejected"] == 1


async def test_a_rejected_id_reopened_is_asked_anew_and_reported_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.poller.list_sweep = False
        r.poller.subscriptions = default_endpoints()
        r.watch(["nosuchjob"])
        for step in (0, REJECT_RETRY, REJECT_WINDOW - REJECT_RETRY):
            r.clock.advance(step)
            await poll_once(r)
        assert r.store.list_watches()[0]["state"] == "rejected"

        # Reopened: its count starts over (one answer does not reject it again at once)...
        assert r.store.reopen_watch("nosuchjob")
        await poll_once(r)
        (watch,) = r.store.list_watches()
        assert (watch["state"], watch["rejections"]) == ("active", 1)
        for step in (REJECT_RETRY, REJECT_WINDOW - REJECT_RETRY):
            r.clock.advance(step)
            await poll_once(r)
        # ... and a second rejection is its reopen's own event, under an id of its own
        # (schema 21: events are unique by id, which counts the reopens).
        assert r.store.list_watches()[0]["state"] == "rejected"
        events = r.store.list_events()
        assert [e["type"] for e in events] == ["lip_sync.rejected"] * 2
        assert {e["event_id"] for e in events} == {
            job_event_id("nosuchjob", "lip_sync.rejected", reopens) for reopens in (0, 1)
        }
        assert len(r.store.list_deliveries()) == 4


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
