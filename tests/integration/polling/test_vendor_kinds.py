"""The vendor client reads every kind with its table entry, against the real simulator on
127.0.0.1 (which keeps its own wire table, so a mistake in ours shows here): the poll's method,
path and id parameter, the status turned into a phase, the list call's shape (video's
capitalised keys, AI creation's batch by ids)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notifier import kinds
from notifier.kinds import Kind, Phase
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import UnknownJob, VendorClient
from notifier.service.http_server import AppServer
from notifier.store import Store
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, FakeClock
from tests.kit.vendor import vendor_client

APP_ID = "kinds-app"
RUN_S = 20.0
#: What a person is linked to when each kind succeeded: the simulator must fill it.
LINKED = {
    "lip_sync": "video_url",
    "video": "video_url",
    "customised_person": "preview_url",
    "voice_clone": "audio_path",
    "tts": "full",
    "ai_creation": "output_url",
}


@dataclass
class Rig:
    sim: VendorSimulator
    client: VendorClient
    clock: FakeClock


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FakeClock()
    config = SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=0, seed=3)
    sim = VendorSimulator(config, clock=clock)
    async with AppServer(sim.make_app()) as server:
        with Store(tmp_path / "s.db") as store:
            limiter = RateLimiter(LimiterSettings(1000), cooldown=0.1)
            client = vendor_client(server.url, store, limiter, app_id=APP_ID, clock=clock)
            try:
                yield Rig(sim, client, clock)
            finally:
                await client.aclose()


def test_every_kind_in_the_table_is_tested_here() -> None:
    assert set(LINKED) == set(kinds.KINDS)


@pytest.mark.parametrize("kind", kinds.KINDS.values(), ids=lambda k: k.name)
async def test_a_job_of_each_kind_runs_then_succeeds(rig: Rig, kind: Kind) -> None:
    job_id = rig.sim.add_job(kind=kind.name, queue_s=0, run_s=RUN_S, outcome="succeeded")
    rig.clock.advance(RUN_S / 2)
    running = await rig.client.detail(job_id, kind=kind)
    assert (running.kind, running.phase, running.terminal) == (kind.name, Phase.RUNNING, False)
    rig.clock.advance(RUN_S)
    done = await rig.client.detail(job_id, kind=kind)
    assert (done.phase, done.terminal) == (Phase.SUCCEEDED, True)
    assert done.raw is not None and done.raw.get(LINKED[kind.name])
    assert kind.link(done.raw).startswith("http")
    payload = done.as_dict()
    assert payload["id"] == job_id
    if kind.payload_fields:  # lip-sync: the contract's fixed fields
        assert list(payload) == list(kind.payload_fields)
    else:  # the vendor's object as it came
        assert LINKED[kind.name] in payload


@pytest.mark.parametrize("kind", kinds.KINDS.values(), ids=lambda k: k.name)
async def test_a_job_of_each_kind_fails_with_the_vendors_reason(rig: Rig, kind: Kind) -> None:
    job_id = rig.sim.add_job(
        kind=kind.name, queue_s=0, run_s=RUN_S, outcome="failed", msg="no credit left"
    )
    rig.clock.advance(2 * RUN_S)
    done = await rig.client.detail(job_id, kind=kind)
    assert (done.phase, done.terminal) == (Phase.FAILED, True)
    assert done.msg == "no credit left"


async def test_video_success_is_status_30_and_lip_sync_30_a_failure(rig: Rig) -> None:
    video = rig.sim.add_job(kind="video", queue_s=0, run_s=1, outcome="succeeded")
    lip = rig.sim.add_job(kind="lip_sync", queue_s=0, run_s=1, outcome="failed")
    rig.clock.advance(5)
    v = await rig.client.detail(video, kind=kinds.VIDEO)
    lip_detail = await rig.client.detail(lip)
    assert (v.status, v.phase) == (30, Phase.SUCCEEDED)
    assert (lip_detail.status, lip_detail.phase) == (30, Phase.FAILED)


async def test_the_same_id_under_two_kinds_is_two_jobs(rig: Rig) -> None:
    rig.sim.add_job("sharedid01", kind="video", queue_s=0, run_s=1, outcome="failed")
    with pytest.raises(UnknownJob):
        await rig.client.detail("sharedid01")  # no lip-sync job by that id
    rig.clock.advance(5)
    assert (await rig.client.detail("sharedid01", kind=kinds.VIDEO)).phase is Phase.FAILED


@pytest.mark.parametrize(
    "kind",
    [k for k in kinds.KINDS.values() if k.listing is not None and k.listing.by == "page"],
    ids=lambda k: k.name,
)
async def test_each_listed_kind_is_read_by_its_list_call(rig: Rig, kind: Kind) -> None:
    ids = [rig.sim.add_job(kind=kind.name, queue_s=0, run_s=RUN_S) for _ in range(3)]
    rig.sim.add_job(kind="lip_sync" if kind.name != "lip_sync" else "video", queue_s=0)
    rig.clock.advance(2 * RUN_S)
    page = await rig.client.list_page(1, 100, kind)
    assert sorted(d.id for d in page.details) == sorted(ids)
    assert {(d.kind, d.phase) for d in page.details} == {(kind.name, Phase.SUCCEEDED)}
    assert page.pages == 1


async def test_ai_creation_is_listed_by_its_ids_at_most_a_page_at_once(rig: Rig) -> None:
    kind = kinds.AI_CREATION
    ids = [rig.sim.add_job(kind=kind.name, queue_s=0, run_s=RUN_S) for _ in range(4)]
    rig.clock.advance(RUN_S / 2)
    page = await rig.client.list_ids(ids[:3], kind)
    assert sorted(d.id for d in page.details) == sorted(ids[:3])
    assert {d.phase for d in page.details} == {Phase.RUNNING}
    assert kind.listing is not None
    with pytest.raises(ValueError, match="at most 50 ids"):
        await rig.client.list_ids([f"id{n}" for n in range(kind.listing.max_page_size + 1)], kind)


async def test_an_ai_creation_list_refused_without_a_type_is_asked_for_each_type(
    tmp_path: Path,
) -> None:
    """docs/kinds.md, Unverified: should the vendor refuse AI creation's list without
    ``type``, the client asks for each type (3, 4) from then on and merges the answers, so
    the sweep still reads every watched job in a call per type."""
    clock = FakeClock()
    config = SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=0, seed=3, ai_list_needs_type=True)
    sim = VendorSimulator(config, clock=clock)
    kind = kinds.AI_CREATION
    path = "/open/v1/ai_creation/task/page"
    async with AppServer(sim.make_app()) as server:
        with Store(tmp_path / "s.db") as store:
            limiter = RateLimiter(LimiterSettings(1000), cooldown=0.1)
            client = vendor_client(server.url, store, limiter, app_id=APP_ID, clock=clock)
            try:
                ids = [sim.add_job(kind=kind.name, queue_s=0, run_s=RUN_S) for _ in range(3)]
                clock.advance(2 * RUN_S)
                page = await client.list_ids(ids, kind)
                assert sorted(d.id for d in page.details) == sorted(ids)
                assert {d.phase for d in page.details} == {Phase.SUCCEEDED}
                assert page.received == 3
                # One refused call, then one per type.
                assert sim.stats()["by_path"][path] == 3
                again = await client.list_ids(ids[:1], kind)
                assert [d.id for d in again.details] == ids[:1]
                assert sim.stats()["by_path"][path] == 5  # no refused call any more
            finally:
                await client.aclose()
