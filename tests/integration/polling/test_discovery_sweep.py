"""Discovery (``watch.discover``) in the list sweep: a real Poller, the real vendor client
and limiter, a real SQLite state and the simulator over HTTP, on one fake clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from structlog.testing import capture_logs

from notifier.kinds import DEFAULT_KIND
from notifier.polling.discovery import Discoverer, DiscoverySettings
from notifier.polling.poller import SWEEP_BUDGET_SHARE_PRODUCTIVE, Poller
from tests.kit import T0
from tests.kit.poller import poller_settings
from tests.kit.sweep import DETAIL_PATH, LIST_PATH, SETTINGS, SUBSCRIPTIONS, Rig, add_jobs, rig

LABELS = {"source": "discovered", "team": "video"}


def discover(
    r: Rig,
    since: float,
    labels: Mapping[str, str] = LABELS,
    kinds: tuple[str, ...] = (DEFAULT_KIND,),
) -> Discoverer:
    found = Discoverer(r.store, DiscoverySettings(since, dict(labels), ("ops",), kinds))
    r.poller.discovery = found
    return found


def restart(r: Rig, since: float) -> Discoverer:
    """A new Poller on the same state, as after a restart (nothing kept in memory)."""
    r.poller = Poller(
        r.store, r.poller.vendor, r.limiter, poller_settings(SETTINGS, SUBSCRIPTIONS), clock=r.clock
    )
    return discover(r, since)


def watched(r: Rig) -> dict[str, str]:
    return {w["job_id"]: w["source"] for w in r.store.list_watches()}


def by_kind(r: Rig) -> set[tuple[str, str]]:
    return {(w["kind"], w["job_id"]) for w in r.store.list_watches()}


def events(r: Rig) -> list[tuple[str, str]]:
    return [(e["job_id"], e["type"]) for e in r.store.list_events()]


async def test_jobs_from_since_on_become_watches_and_older_ones_never_do(tmp_path: Path) -> None:
    async with rig(tmp_path, start=T0 - 100) as (r, _):
        older = add_jobs(r.sim, "older", 3, queue_s=0, run_s=5)
        r.clock.advance(100)
        since = float(int(r.clock()))
        found = discover(r, since)
        ok = r.sim.add_job("new-ok", queue_s=0, run_s=5, outcome=20)
        bad = r.sim.add_job("new-bad", queue_s=0, run_s=5, outcome=30)
        r.clock.advance(1)

        with capture_logs() as logs:
            await r.poller.sweep()

        assert watched(r) == {ok: "discovery", bad: "discovery"}
        for row in r.store.list_watches():
            assert row["labels"] == LABELS and row["endpoints"] == ["ops"]
            assert row["polls"] == 1  # observed from the list answer: no detail poll due
        assert found.discovered == 2 and r.poller.sweep_state()["discovered"] == 2
        assert [(e["event"], e["count"]) for e in logs if e["event"] == "discovered jobs"] == [
            ("discovered jobs", 2)
        ]
        assert {e["job_id"] for e in logs if e["event"] == "discovered job"} == {ok, bad}

        r.clock.advance(10)
        await r.poller.sweep()

        assert sorted(events(r)) == [(bad, "lip_sync.failed"), (ok, "lip_sync.succeeded")]
        recorded = r.store.events_after(None, 10)
        assert recorded is not None and len(recorded) == 2
        for event in recorded:
            assert event["data"]["labels"] == LABELS, event
        assert {d["endpoint"] for d in r.store.list_deliveries()} == {"ops"}
        assert len(r.store.list_deliveries()) == 2
        assert r.calls(DETAIL_PATH) == 0
        assert not set(older) & set(watched(r))


async def test_a_job_created_and_finished_between_two_sweeps_makes_one_event(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as (r, _):
        discover(r, float(int(r.clock())))
        await r.poller.sweep()  # an empty account
        quick = r.sim.add_job("quick", queue_s=0, run_s=0.5, outcome=20)
        r.clock.advance(2)

        await r.poller.sweep()
        await r.poller.sweep()
        r.clock.advance(2)
        await r.poller.sweep()

        assert events(r) == [(quick, "lip_sync.succeeded")]
        assert r.store.watch_summary(quick)["state"] == "succeeded"  # type: ignore[index]
        assert r.calls(DETAIL_PATH) == 0


async def test_finished_and_removed_watches_are_not_made_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        discover(r, float(int(r.clock())))
        # All in one second: the covered mark is that second, which every round reads again.
        done = r.sim.add_job("done", queue_s=0, run_s=0.1)
        removed = r.sim.add_job("removed", queue_s=0, run_s=1000)
        manual = r.sim.add_job("manual", queue_s=0, run_s=1000)
        r.watch([manual])  # watched already (watch add): left as it is
        r.store.remove_watches([manual])  # …and removed by its user
        r.clock.advance(0.5)
        await r.poller.sweep()
        assert set(watched(r)) == {done, removed}
        r.store.remove_watches([removed])

        for _ in range(3):
            await r.poller.sweep()

        assert set(watched(r)) == {done}
        assert events(r) == [(done, "lip_sync.succeeded")]


async def test_a_busy_account_is_covered_within_the_budget_without_duplicates(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, qps=60, start=T0 - 1000) as (r, _):
        # A budget of 10 calls a sweep (60/s, a sweep every 1/6 s of limiter time) while the
        # account's clock moves a second a sweep: the calls take a sixth of the real time.
        r.poller.settings = replace(r.poller.settings, min_interval=1 / 6)
        r.sim.set_faults(list_page_cap=10)
        older = add_jobs(r.sim, "older", 50, queue_s=0, run_s=100_000)  # before since
        r.clock.advance(1000)
        since = float(int(r.clock()))
        r.clock.advance(1)
        discover(r, since)
        # Other applications create 20 jobs a second on the account; a sweep may spend 10
        # calls (8 while its pages hold watches): new jobs push the older ones a page or two
        # further down between sweeps, so pages shift under the round.
        r.sim.set_faults(noise_rate=20)
        first = add_jobs(r.sim, "burst", 120, queue_s=0, run_s=100_000)
        budget = r.limiter.qps * r.poller.settings.min_interval
        per_sweep = []
        for _ in range(12):
            before = r.calls(LIST_PATH)
            await r.poller.sweep()
            per_sweep.append(r.calls(LIST_PATH) - before)
            r.clock.advance(1)
        r.sim.set_faults(noise_rate=0)
        for _ in range(6):  # the account quiets down: the rounds catch up
            await r.poller.sweep()
            r.clock.advance(1)

        assert max(per_sweep) <= budget * SWEEP_BUDGET_SHARE_PRODUCTIVE
        assert r.poller.sweep_results["partial"] > 0  # it did take several sweeps a round
        vendor = r.vendor_view()
        new = {job_id for job_id, job in vendor.items() if job["create_time"] >= since}
        assert set(first) <= new and len(new) > 300
        rows = r.store.list_watches()
        assert {w["job_id"] for w in rows} == new  # every new job, once; no older one
        assert len(rows) == len(new)
        assert r.poller.discovery is not None and r.poller.discovery.discovered == len(new)
        assert not set(older) & {w["job_id"] for w in rows}
        # Rounds were completed: the covered mark moved up to the newest job they saw.
        assert r.store.discovery_covered(since) == max(
            job["create_time"] for job in vendor.values()
        )


async def test_jobs_sharing_a_second_across_pages_are_each_made_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as (r, _):
        r.sim.set_faults(list_page_cap=10)
        r.poller.settings = replace(r.poller.settings, min_interval=10.0)  # room for pages
        since = float(int(r.clock()))
        discover(r, since)
        first = add_jobs(r.sim, "same", 25, queue_s=0, run_s=1000)  # one second, 3 pages
        await r.poller.sweep()
        assert set(watched(r)) == set(first)
        # More in that very second: the covered mark is that second, so they are found,
        # and those of the first batch (now a page further down) are not made twice.
        second = add_jobs(r.sim, "again", 12, queue_s=0, run_s=1000)
        await r.poller.sweep()

        assert set(watched(r)) == set(first) | set(second)
        assert r.poller.discovery is not None and r.poller.discovery.discovered == 37


async def test_the_covered_mark_survives_a_restart(tmp_path: Path) -> None:
    async with rig(tmp_path, start=T0 - 100) as (r, _):
        r.sim.set_faults(list_page_cap=10)
        since = float(int(r.clock()))
        discover(r, since)
        add_jobs(r.sim, "early", 35, queue_s=0, run_s=1)
        r.clock.advance(1)
        add_jobs(r.sim, "next", 5, queue_s=0, run_s=1)
        r.clock.advance(100)
        await r.poller.sweep()  # 4 pages; the jobs had finished: 40 events
        assert len(watched(r)) == 40 and len(events(r)) == 40
        calls = r.calls(LIST_PATH)

        r.clock.advance(10)
        late = add_jobs(r.sim, "while-down", 3, queue_s=0, run_s=100_000)
        r.clock.advance(10)
        restart(r, since)
        await r.poller.sweep()

        # Only the newest page: the jobs made while down, those of the mark's second (seen
        # again, not made again) and older ones, where it stops.
        assert r.calls(LIST_PATH) - calls == 1
        assert set(late) < set(watched(r)) and len(watched(r)) == 43

        # Another ``since`` starts over from it (here: later, so nothing more is made).
        restart(r, since + 50)
        await r.poller.sweep()
        assert len(watched(r)) == 43


async def test_each_kind_named_is_discovered_from_its_own_list(tmp_path: Path) -> None:
    async with rig(tmp_path, start=T0 - 100) as (r, _):
        old_video = r.sim.add_job(kind="video", queue_s=0, run_s=5)
        r.clock.advance(100)
        since = float(int(r.clock()))
        found = discover(r, since, kinds=("lip_sync", "video"))
        lip = r.sim.add_job(queue_s=0, run_s=50)
        video = r.sim.add_job(kind="video", queue_s=0, run_s=50)
        avatar = r.sim.add_job(kind="customised_person", queue_s=0, run_s=50)
        done = r.sim.add_job(kind="video", queue_s=0, run_s=0.5, outcome="failed")
        r.clock.advance(1)

        await r.poller.sweep()

        # Lip-sync and video, each from its own list; avatars were not named, and video's
        # job from before ``since`` is not new.
        assert by_kind(r) == {("lip_sync", lip), ("video", video), ("video", done)}
        assert r.calls("/open/v1/list_customised_person") == 0
        assert found.discovered == 3
        # One that had already finished makes its event of its kind from the list answer.
        assert events(r) == [(done, "video.failed")]
        assert old_video not in {job_id for _kind, job_id in by_kind(r)}
        # Each list's round was completed: each kind's mark moved to its own newest job.
        vendor = r.vendor_view()
        assert r.store.discovery_covered(since, "video") == vendor[video]["create_time"]
        assert r.store.discovery_covered(since) == vendor[lip]["create_time"]
        assert r.store.discovery_covered(since, "customised_person") == since
        # Nothing watched yet of an avatar: a reload that adds the kind reads its list too.
        found.configure(replace(found.settings, kinds=("lip_sync", "video", "customised_person")))
        r.clock.advance(1)
        await r.poller.sweep()
        assert ("customised_person", avatar) in by_kind(r)
        assert r.calls(DETAIL_PATH) == 0  # all of it from list answers
