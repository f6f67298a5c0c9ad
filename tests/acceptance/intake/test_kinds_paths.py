"""Every job kind along each intake path through the real daemon (issue 21, "done when"):
``watch add --kind``, the intake API's ``kind`` and the vendor callback's kind route each
bring a success and a failure of every kind, delivered as that kind's events. A path that
dropped the kind would make lip-sync watches the simulator does not know: no event."""

from __future__ import annotations

import httpx
import pytest

from notifier import kinds
from tests.kit import ReceiverServer, Simulator, Workspace, wait_until
from tests.kit.callbacks import CALLBACK_TOKEN, INTAKE_TOKEN, PREFIX, _enable
from tests.kit.kind_jobs import add_kind_jobs, await_kind_events, job_events

pytestmark = pytest.mark.slow

CALLBACK_KINDS = [k.name for k in kinds.KINDS.values() if k.callback]


def _watches(ws: Workspace) -> set[tuple[str, str, str]]:
    return {(w["job_id"], w["kind"], w["source"]) for w in ws.cli_json("watch", "list")}


def test_watch_add_with_each_kind_delivers_that_kinds_events(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    jobs = add_kind_jobs(simulator, kinds.KINDS)
    for kind in kinds.KINDS:
        ids = [jobs[kind, "succeeded"], jobs[kind, "failed"]]
        workspace.cli("watch", "add", *ids, "--kind", kind, "--label", f"kind={kind}")
    got = await_kind_events(receiver, jobs)
    for (kind, outcome), job_id in jobs.items():
        assert got[job_id, f"{kind}.{outcome}"]["data"]["labels"] == {"kind": kind}
    for kind in kinds.KINDS:
        listed = workspace.cli_json("watch", "list", "--kind", kind)
        assert {w["job_id"] for w in listed} == {jobs[kind, o] for o in ("succeeded", "failed")}
    assert daemon.stop() == 0


def test_the_intake_api_with_each_kind_delivers_that_kinds_events(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace)
    workspace.config["polling"] = {"min_interval": "300ms", "max_interval": "2s"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    jobs = add_kind_jobs(simulator, kinds.KINDS)
    auth = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    with httpx.Client(base_url=url, headers=auth, timeout=10) as api:
        for kind in kinds.KINDS:
            ids = [jobs[kind, "succeeded"], jobs[kind, "failed"]]
            answer = api.post("/v1/watches", json={"ids": ids, "kind": kind})
            assert answer.status_code == 202 and answer.json()["accepted"] == 2, answer.text
        await_kind_events(receiver, jobs)
        for (kind, outcome), job_id in jobs.items():
            row = api.get(f"/v1/watches/{job_id}", params={"kind": kind}).json()
            assert (row["kind"], row["state"]) == (kind, outcome), row
            if kind != kinds.DEFAULT_KIND:  # no lip-sync watch of that id was made
                assert api.get(f"/v1/watches/{job_id}").status_code == 404
    assert daemon.stop() == 0


def test_a_callback_on_each_kinds_route_brings_an_unwatched_job(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, endpoints=["ops"])
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}/{{kind}}"
    jobs = add_kind_jobs(simulator, CALLBACK_KINDS, callback=hook)
    await_kind_events(receiver, jobs, timeout=30)
    stats = simulator.sim.stats()["jobs"]
    for (kind, _outcome), job_id in jobs.items():
        seen = stats[job_id if kind == kinds.DEFAULT_KIND else f"{kind}:{job_id}"]
        assert seen["callback_result"] == "http 202", (kind, seen)
        assert seen["detail_calls"] >= 1, kind  # confirmed by a detail poll of its kind
    want = {(job_id, kind, "callback") for (kind, _o), job_id in jobs.items()}
    assert wait_until(lambda: _watches(workspace) >= want, 10), _watches(workspace)
    assert CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0


def test_one_id_on_two_kinds_routes_makes_two_watches(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, endpoints=["ops"])
    daemon = workspace.start()
    daemon.wait_ready()
    job_id = "5d41402abc4b2a76b9719d911017c592"
    two = ("video", "customised_person")
    for kind in two:
        hook = f"{url}{PREFIX}{CALLBACK_TOKEN}/{kind}"
        simulator.sim.add_job(job_id, kind=kind, queue_s=0.2, run_s=0.5, callback=hook)
    want = {(job_id, f"{kind}.succeeded") for kind in two}
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: set(job_events(r)) >= want, 30), rec.summary()
    assert {k for k in job_events(rec) if k[0] == job_id} == want
    both = {(job_id, kind, "callback") for kind in two}
    assert wait_until(lambda: _watches(workspace) >= both, 10), _watches(workspace)
    assert daemon.stop() == 0
