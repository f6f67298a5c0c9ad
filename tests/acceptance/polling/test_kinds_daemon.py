"""Every job kind through the real daemon and simulator (issue 21, item 10): a success and a
failure of each kind, watched through the watch file, arrive as ``<kind>.succeeded`` and
``<kind>.failed`` by webhook and Slack; the kinds with a list call are swept; a video job's
callback on its kind's route brings it without a watch."""

from __future__ import annotations

from typing import Any

import pytest

from notifier import kinds
from notifier.tools.receiver import Receiver
from tests.kit import SLACK_PATH, ReceiverServer, Simulator, Workspace, wait_until
from tests.kit.callbacks import CALLBACK_TOKEN, PREFIX, _enable

pytestmark = pytest.mark.slow

#: The field of each kind's success a person is linked to (and that its webhook carries).
RESULT = {
    "lip_sync": "video_url",
    "video": "video_url",
    "customised_person": "preview_url",
    "voice_clone": "audio_path",
    "tts": "full",
    "ai_creation": "output_url",
}


def _events(rec: Receiver, path: str = "/ops") -> dict[tuple[str, str], dict[str, Any]]:
    """(job id, type) → the webhook's body, of every accepted webhook at ``path``."""
    return {(r.payload["data"]["id"], r.payload["type"]): r.payload for r in rec.accepted(path)}


def test_every_kind_succeeds_and_fails_through_the_daemon(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    jobs: dict[tuple[str, str], str] = {}  # (kind, outcome) → job id
    for kind in kinds.KINDS:
        for outcome in ("succeeded", "failed"):
            jobs[kind, outcome] = simulator.sim.add_job(
                kind=kind, queue_s=0.5, run_s=2.0, outcome=outcome, msg=f"{kind} {outcome}"
            )
    items = [
        {"id": job_id, "kind": kind, "labels": {"case": f"{kind}-{outcome}"}}
        for (kind, outcome), job_id in jobs.items()
    ]
    workspace.write_watch(items)
    _ops, _analytics, team = workspace.config["endpoints"]
    team["events"] = ["*.failed"]
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver
    want = {(job_id, f"{kind}.{outcome}") for (kind, outcome), job_id in jobs.items()}
    assert rec.wait_for_blocking(lambda r: set(_events(r)) >= want, timeout=60), rec.summary()
    got = _events(rec)
    assert set(got) == want  # one event per job, of its kind and outcome
    for (kind, outcome), job_id in jobs.items():
        data = got[job_id, f"{kind}.{outcome}"]["data"]
        assert data["labels"] == {"case": f"{kind}-{outcome}"}
        assert data.get("kind", "lip_sync") == kind
        if outcome == "succeeded":
            assert data[RESULT[kind]], (kind, data)
    video_ok = got[jobs["video", "succeeded"], "video.succeeded"]["data"]
    video_bad = got[jobs["video", "failed"], "video.failed"]["data"]
    assert video_ok["status"] == 30 and video_bad["status"] >= 40
    # Slack (the team endpoint) gets the failures, worded from the phase.
    assert rec.wait_for_blocking(lambda r: len(r.accepted(SLACK_PATH)) >= len(kinds.KINDS), 30)
    headers = {s.payload["blocks"][0]["text"]["text"] for s in rec.accepted(SLACK_PATH)}
    assert all("failed" in h for h in headers), headers
    assert "❌ Digital-human video job failed" in headers
    # Kinds with a list call were swept; TTS has none, so it was only polled.
    by_path = simulator.sim.stats()["by_path"]
    for kind in kinds.KINDS.values():
        if kind.listing is not None:
            assert by_path.get(kind.listing.path, 0) >= 1, kind.name
        assert by_path.get(kind.poll.path, 0) >= 1 or kind.listing is not None, kind.name
    assert daemon.stop() == 0
    listed = workspace.cli_json("watch", "list")
    assert {(w["job_id"], w["kind"]) for w in listed} == {(j, k) for (k, _o), j in jobs.items()}


def test_a_video_callback_on_its_route_brings_an_unwatched_job(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    url = _enable(workspace, endpoints=["ops"])
    daemon = workspace.start()
    daemon.wait_ready()
    hook = f"{url}{PREFIX}{CALLBACK_TOKEN}/video"
    job_id = simulator.sim.add_job(kind="video", queue_s=0.2, run_s=0.5, callback=hook)
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: (job_id, "video.succeeded") in _events(r), timeout=20), (
        rec.summary()
    )
    assert simulator.sim.stats()["jobs"][f"video:{job_id}"]["callback_result"] == "http 202"

    def videos() -> list[dict[str, Any]]:
        return [w for w in workspace.cli_json("watch", "list") if w["kind"] == "video"]

    assert wait_until(videos, 10)
    (watch,) = videos()
    assert (watch["job_id"], watch["source"]) == (job_id, "callback")
    assert CALLBACK_TOKEN not in daemon.output
    assert daemon.stop() == 0
