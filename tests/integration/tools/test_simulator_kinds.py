"""The vendor simulator serves every job kind as the vendor does (issue 21, item 9): each kind's
create, detail and list over real HTTP on 127.0.0.1, on a fake clock; one budget and one token
for all of them; the vendor's own SDK (``chanjingsdk``) driving TTS and a voice clone."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import chanjing.api
import chanjing.auth
import chanjing.cache
import chanjing.services.tts
import chanjing.services.voice_clone
import httpx
import pytest
import yaml
from aiohttp import web

from notifier import kinds
from notifier.service.http_server import ServerThread
from notifier.tools.sim_jobs import SimJob
from notifier.tools.sim_kinds import SIM_KINDS
from tests.kit import T0, run_cli
from tests.kit.vendor import Vendor

HINT = {"queue_s": 1, "run_s": 4}


def create(vendor: Vendor, path: str, token: str, **hints: Any) -> Any:
    answer = vendor.post(path, {"_sim": {**HINT, **hints}}, token)
    assert answer["code"] == 0, answer
    return answer["data"]


def get(vendor: Vendor, path: str, token: str | None, **params: str) -> dict[str, Any]:
    headers = {"access_token": token} if token is not None else {}
    resp = vendor.http.get(path, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def ok(answer: dict[str, Any]) -> Any:
    assert answer["code"] == 0, answer
    return answer["data"]


# --------------------------------------------------------------------------- video


def test_video_runs_as_10_then_succeeds_as_30_with_seconds(vendor: Vendor) -> None:
    token = vendor.new_token()
    job = create(vendor, "/open/v1/create_video", token)
    assert isinstance(job, str) and re.fullmatch(r"[0-9a-f]{32}", job)

    queued = ok(get(vendor, "/open/v1/video", token, id=job))
    assert (queued["status"], queued["progress"], queued["video_url"]) == (10, 0, "")
    vendor.clock.advance(3)
    running = ok(get(vendor, "/open/v1/video", token, id=job))
    assert running["status"] == 10 and 0 < running["progress"] < 100
    vendor.clock.advance(2)
    done = ok(get(vendor, "/open/v1/video", token, id=job))
    assert (done["id"], done["status"], done["progress"]) == (job, 30, 100)
    assert done["video_url"].endswith(f"/{job}.mp4")
    assert done["preview_url"] and done["subtitle_data_url"]
    assert isinstance(done["duration"], int) and 5 <= done["duration"] <= 60  # seconds, not ms
    assert done["audio_urls"] and all(isinstance(u, str) for u in done["audio_urls"])
    # The lip-sync detail does not know a video's id: kinds are separate.
    assert vendor.detail(job, token)["code"] == 40000


@pytest.mark.parametrize("status", [40, 49, 50, 59])
def test_video_fails_with_a_4x_or_5x_status_and_its_reason(vendor: Vendor, status: int) -> None:
    token = vendor.new_token()
    job = create(vendor, "/open/v1/create_video", token, outcome=status, msg="no such avatar")
    vendor.clock.advance(5)
    data = ok(get(vendor, "/open/v1/video", token, id=job))
    assert (data["status"], data["msg"], data["video_url"]) == (status, "no such avatar", "")


def test_video_list_answers_with_capitalised_keys(vendor: Vendor) -> None:
    token = vendor.new_token()
    older = create(vendor, "/open/v1/create_video", token)
    vendor.clock.advance(1)
    newer = create(vendor, "/open/v1/create_video", token)
    vendor.sim.add_job("a-lip-sync-job")  # another kind: not in the video list

    data = ok(vendor.post("/open/v1/video_list", {"page": 1, "page_size": 10}, token))
    assert set(data) == {"List", "PageInfo"}
    assert [item["id"] for item in data["List"]] == [newer, older]
    assert data["PageInfo"]["total_count"] == 2
    assert data["PageInfo"]["total_page"] == 1
    over = vendor.post("/open/v1/video_list", {"page_size": 101}, token)
    assert over["code"] == 40000


# --------------------------------------------------------------------------- avatars, voices


def test_customised_person_trains_and_lists(vendor: Vendor) -> None:
    token = vendor.new_token()
    job = create(vendor, "/open/v1/create_customised_person", token)
    path = "/open/v1/customised_person"
    assert ok(get(vendor, path, token, id=job))["status"] == 0
    vendor.clock.advance(2)
    running = ok(get(vendor, path, token, id=job))
    assert running["status"] == 1 and 0 < running["progress"] < 100
    vendor.clock.advance(3)
    done = ok(get(vendor, path, token, id=job))
    assert (done["status"], done["progress"], done["err_reason"]) == (2, 100, "")
    assert done["pic_url"] and done["preview_url"] and done["audio_man_id"]
    assert done["width"] > 0 and done["height"] > 0

    failed = create(vendor, "/open/v1/create_customised_person", token, outcome=5, msg="blurry")
    vendor.clock.advance(5)
    data = ok(get(vendor, path, token, id=failed))
    assert (data["status"], data["err_reason"], data["pic_url"]) == (5, "blurry", "")

    listed = ok(vendor.post("/open/v1/list_customised_person", {"page": 1}, token))
    assert [item["id"] for item in listed["list"]] == [failed, job]
    assert listed["page_info"]["total_count"] == 2


def test_voice_clone_succeeds_then_expires_and_fails_with_err_msg(vendor: Vendor) -> None:
    token = vendor.new_token()
    path = "/open/v1/customised_audio"
    voice = create(vendor, "/open/v1/create_customised_audio", token, later_status=3, later_s=100)
    assert ok(get(vendor, path, token, id=voice))["status"] == 0
    vendor.clock.advance(2)
    assert ok(get(vendor, path, token, id=voice))["status"] == 1
    vendor.clock.advance(3)
    done = ok(get(vendor, path, token, id=voice))
    assert (done["status"], done["progress"], done["err_msg"]) == (2, 100, "")
    assert done["audio_path"].endswith(f"/{voice}.wav")
    vendor.clock.advance(100)
    expired = ok(get(vendor, path, token, id=voice))
    assert (expired["status"], expired["audio_path"]) == (3, "")

    failed = create(vendor, "/open/v1/create_customised_audio", token, outcome=4, msg="too noisy")
    vendor.clock.advance(5)
    data = ok(get(vendor, path, token, id=failed))
    assert (data["status"], data["err_msg"]) == (4, "too noisy")

    listed = ok(vendor.post("/open/v1/list_customised_audio", {}, token))
    assert [item["id"] for item in listed["list"]] == [failed, voice]
    assert [item["status"] for item in listed["list"]] == [4, 3]


def test_a_later_status_is_for_voices_only(vendor: Vendor) -> None:
    with pytest.raises(ValueError, match="does not change after it finished"):
        vendor.sim.add_job(kind="video", later_status=3)
    with pytest.raises(ValueError, match=r"later_status of a voice_clone job must be one of"):
        vendor.sim.add_job(kind="voice_clone", later_status=4)


# --------------------------------------------------------------------------- speech


def test_tts_is_polled_by_post_and_says_done_with_9(vendor: Vendor) -> None:
    token = vendor.new_token()
    created = create(vendor, "/open/v1/create_audio_task", token)
    task = created["task_id"]
    assert set(created) == {"task_id"}
    state = "/open/v1/audio_task_state"

    running = ok(vendor.post(state, {"task_id": task}, token))
    assert running["status"] == 1 and "progress" not in running
    vendor.clock.advance(5)
    done = ok(vendor.post(state, {"task_id": task}, token))
    assert (done["status"], done["errMsg"]) == (9, "")
    assert done["full"]["url"].endswith(done["full"]["path"])
    assert done["full"]["duration"] > 0 and done["subtitles"]

    failed = create(vendor, "/open/v1/create_audio_task", token, outcome="failed", msg="bad text")
    vendor.clock.advance(5)
    data = ok(vendor.post(state, {"task_id": failed["task_id"]}, token))
    assert (data["status"], data["errMsg"], data["full"]) == (9, "bad text", {})
    assert data["errReason"]

    assert vendor.post(state, {}, token)["code"] == 40000
    assert vendor.post(state, {"task_id": "nope"}, token)["code"] == 40000
    assert vendor.http.get(state, params={"task_id": task}).status_code == 405  # POST only
    # 9 is both outcomes: a test must say which.
    assert vendor.post("/open/v1/create_audio_task", {"_sim": {"outcome": 9}}, token)["code"] == (
        40000
    )


# --------------------------------------------------------------------------- AI creation


def test_ai_creation_goes_by_words_and_lists_by_ids(vendor: Vendor) -> None:
    token = vendor.new_token()
    path = "/open/v1/ai_creation/task"
    task = create(vendor, "/open/v1/ai_creation/task/submit", token)
    seen = []
    for _ in range(5):
        data = ok(get(vendor, path, token, unique_id=task))
        seen.append(data["progress_desc"])
        assert "progress" not in data
        vendor.clock.advance(1)
    done = ok(get(vendor, path, token, unique_id=task))
    assert seen == ["Queued", "Ready", "Ready", "Generating", "Generating"]
    assert (done["unique_id"], done["progress_desc"], done["err_msg"]) == (task, "Success", "")
    assert isinstance(done["output_url"], list) and done["output_url"]

    failed = create(vendor, "/open/v1/ai_creation/task/submit", token, outcome="Fail", msg="nsfw")
    other = create(vendor, "/open/v1/ai_creation/task/submit", token)
    vendor.clock.advance(5)
    page = "/open/v1/ai_creation/task/page"
    body = {"unique_ids": [task, failed, "unknown"], "type": 3, "page": 1, "page_size": 50}
    listed = ok(vendor.post(page, body, token))
    items = {item["unique_id"]: item for item in listed["list"]}
    assert set(items) == {task, failed}  # asked for, and known; not `other`
    assert other not in items
    assert (items[failed]["progress_desc"], items[failed]["err_msg"]) == ("Fail", "nsfw")
    assert listed["page_info"]["total_count"] == 2

    assert vendor.post(page, {**body, "page_size": 51}, token)["code"] == 40000
    assert vendor.post(page, {**body, "unique_ids": "not-a-list"}, token)["code"] == 40000
    # No ids (or an empty list) is every task; is_success keeps the successful ones.
    everything = ok(vendor.post(page, {"unique_ids": [], "type": 3}, token))["list"]
    assert [item["unique_id"] for item in everything] == [other, failed, task]
    succeeded = ok(vendor.post(page, {"type": 3, "is_success": True}, token))["list"]
    assert [item["unique_id"] for item in succeeded] == [other, task]


# --------------------------------------------------------------------------- every kind


def test_the_same_id_under_two_kinds_is_two_jobs(vendor: Vendor) -> None:
    resp = vendor.http.post(
        "/_sim/jobs",
        json=[
            {"id": "shared-1", "queue_s": 0, "run_s": 0},
            {"id": "shared-1", "kind": "video", "queue_s": 0, "run_s": 0, "outcome": "failed"},
        ],
    )
    assert resp.status_code == 200, resp.text
    token = vendor.new_token()
    assert ok(vendor.detail("shared-1", token))["status"] == 20
    assert ok(get(vendor, "/open/v1/video", token, id="shared-1"))["status"] == 40
    stats = vendor.sim.stats()["jobs"]
    assert stats["shared-1"]["kind"] == "lip_sync"
    assert stats["video:shared-1"]["kind"] == "video"
    assert {(j["kind"], j["id"]) for j in vendor.http.get("/_sim/jobs").json()["jobs"]} == {
        ("lip_sync", "shared-1"),
        ("video", "shared-1"),
    }
    again = vendor.http.post("/_sim/jobs", json={"id": "shared-1", "kind": "video"})
    assert again.status_code == 400 and "video job 'shared-1' already exists" in again.text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "photo"}, "kind must be one of ['lip_sync', 'video'"),
        ({"kind": "tts", "outcome": 9}, "outcome of a tts job must be 'succeeded' or 'failed'"),
        ({"kind": "video", "outcome": 20}, "(success) or one of [40, 41"),
        ({"kind": "tts", "callback": "http://127.0.0.1:1/cb"}, "a tts job does not call back"),
    ],
)
def test_sim_jobs_names_a_bad_kind_or_outcome(
    vendor: Vendor, spec: dict[str, Any], expected: str
) -> None:
    resp = vendor.http.post("/_sim/jobs", json=spec)
    assert resp.status_code == 400
    assert expected in resp.json()["error"]


def test_every_kind_shares_one_budget_and_one_token(
    vendor_factory: Callable[..., Vendor],
) -> None:
    vendor = vendor_factory(qps=6)
    ids = {name: vendor.sim.add_job("job-1", kind=name, queue_s=0, run_s=0) for name in SIM_KINDS}
    token = vendor.new_token()  # arrival 1
    assert ok(get(vendor, "/open/v1/video", token, id=ids["video"]))  # 2
    assert ok(get(vendor, "/open/v1/customised_person", token, id="job-1"))  # 3
    assert ok(vendor.post("/open/v1/audio_task_state", {"task_id": "job-1"}, token))  # 4
    assert ok(get(vendor, "/open/v1/ai_creation/task", token, unique_id="job-1"))  # 5
    assert ok(vendor.post("/open/v1/list_customised_audio", {}, token))  # 6
    over = [
        vendor.post("/open/v1/create_audio_task", {}, token),
        get(vendor, "/open/v1/video", token, id="job-1"),
        vendor.post("/open/v1/ai_creation/task/page", {"unique_ids": ["job-1"]}, token),
    ]
    assert [answer["code"] for answer in over] == [40001] * 3
    assert vendor.sim.stats()["max_per_second"] == 9

    vendor.clock.advance(1)
    fresh = vendor.new_token()  # revokes the old one for every kind
    for answer in (
        get(vendor, "/open/v1/video", token, id="job-1"),
        vendor.post("/open/v1/audio_task_state", {"task_id": "job-1"}, token),
        vendor.post("/open/v1/create_customised_person", {}, token),
    ):
        assert answer["code"] == 10400
    assert ok(get(vendor, "/open/v1/customised_audio", fresh, id="job-1"))["status"] == 2


def test_faults_hit_every_kinds_detail_and_list(vendor_factory: Callable[..., Vendor]) -> None:
    vendor = vendor_factory(fault_50000=1.0)
    vendor.sim.add_job("job-1", kind="tts")
    token = vendor.new_token()
    assert vendor.post("/open/v1/audio_task_state", {"task_id": "job-1"}, token)["code"] == 50000
    assert vendor.post("/open/v1/video_list", {}, token)["code"] == 50000


def test_the_daemons_kind_table_agrees_with_the_simulators() -> None:
    """Two tables written apart (the daemon's, the simulator's): where they disagree on a
    path, an id parameter, a list's keys or what a status means, one of them is wrong."""
    assert set(kinds.KINDS) == set(SIM_KINDS)
    for name, sim in SIM_KINDS.items():
        kind = kinds.KINDS[name]
        assert (kind.poll.method, kind.poll.path, kind.poll.id_param) == (
            sim.detail_method,
            sim.detail_path,
            sim.id_param,
        ), name
        assert kind.create_path == sim.create_path, name
        assert kind.callback == (sim.callback is not None), name
        assert (kind.progress_field is not None) == sim.progress, name
        if sim.list_path is None:
            assert kind.listing is None, name
        else:
            assert kind.listing is not None, name
            listing = kind.listing
            assert (listing.path, listing.by, listing.items, listing.page_info) == (
                sim.list_path,
                sim.list_by,
                sim.list_items,
                sim.list_page_info,
            ), name
            assert listing.max_page_size == sim.list_max_page_size, name


@pytest.mark.parametrize("name", list(SIM_KINDS))
def test_the_daemon_reads_every_simulated_status_as_the_simulator_meant_it(name: str) -> None:
    sim = SIM_KINDS[name]
    kind = kinds.KINDS[name]
    statuses = [f for f in sim.failures if f != sim.success]  # TTS: 9 is not an outcome
    for outcome in ("succeeded", "failed", *statuses):
        phase, status = sim.outcome(outcome)
        job = SimJob(
            id="job-1",
            created_at=0.0,
            queue_s=1.0,
            run_s=4.0,
            outcome=status,
            msg="why",
            progress_points=None,
            create_time=0,
            callback=None,
            seq=1,
            kind=sim,
            succeeds=phase == "succeeded",
            later_status=sim.later[0] if sim.later else None,
            later_s=10.0,
        )
        for at in (0.0, 1.0, 2.5, 4.9, 5.0, 20.0):
            moment = job.moment(at)
            read = kind.phase(job.detail(at))
            expected = "failed" if moment.status in sim.later else moment.phase
            if expected == "queued" and sim.queued in sim.running:
                expected = "running"  # no status of its own for "queued" (video, TTS)
            assert read.value == expected, (name, outcome, at, moment)


# --------------------------------------------------------------------------- callbacks


@pytest.fixture
def hook() -> Iterator[tuple[str, list[Any], threading.Event]]:
    received: list[Any] = []
    arrived = threading.Event()

    def app() -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            received.append(await request.json())
            arrived.set()
            return web.Response(text="ok")

        application = web.Application()
        application.router.add_post("/hook", handle)
        return application

    with ServerThread(app) as server:
        yield f"{server.url}/hook", received, arrived


def test_video_calls_back_with_the_bare_detail_data(
    vendor: Vendor, hook: tuple[str, list[Any], threading.Event]
) -> None:
    url, received, arrived = hook
    token = vendor.new_token()
    job = vendor.post("/open/v1/create_video", {"callback": url, "_sim": HINT}, token)["data"]
    assert vendor.server.call(vendor.sim.fire_due_callbacks()) == []
    vendor.clock.advance(5)
    assert arrived.wait(10), "callback never arrived"
    assert received == [ok(get(vendor, "/open/v1/video", token, id=job))]  # no envelope
    assert received[0]["status"] == 30
    assert vendor.sim.stats()["jobs"][f"video:{job}"]["callback_sent_at"] == T0 + 5


def test_voices_and_speech_do_not_call_back(
    vendor: Vendor, hook: tuple[str, list[Any], threading.Event]
) -> None:
    url, received, _arrived = hook
    token = vendor.new_token()
    for path in ("/open/v1/create_customised_audio", "/open/v1/create_audio_task"):
        assert vendor.post(path, {"callback": url, "_sim": HINT}, token)["code"] == 0
    vendor.clock.advance(5)
    assert vendor.server.call(vendor.sim.fire_due_callbacks()) == []
    assert received == []


# --------------------------------------------------------------------------- simulate


def test_simulate_jobs_file_takes_a_kind(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump(
            [
                {"id": "video-1", "kind": "video", "queue_s": 0, "run_s": 0},
                {"id": "speech-1", "kind": "tts", "queue_s": 0, "run_s": 0, "outcome": "failed"},
            ]
        )
    )
    argv = [sys.executable, "-m", "notifier", "simulate", "--port", "0", "--jobs-file", str(jobs)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[:2] == ["job video-1\n", "job speech-1\n"]
        match = re.search(r"listening on (http://\S+)", lines[2])
        assert match, lines
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            creds = {"app_id": "demo-app", "secret_key": "demo-secret"}
            token = http.post("/open/v1/access_token", json=creds).json()["data"]["access_token"]
            headers = {"access_token": token}
            video = http.get("/open/v1/video", params={"id": "video-1"}, headers=headers)
            assert video.json()["data"]["status"] == 30
            body = {"task_id": "speech-1"}
            speech = http.post("/open/v1/audio_task_state", json=body, headers=headers)
            assert speech.json()["data"]["errMsg"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0


def test_simulate_jobs_file_names_an_unknown_kind(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"kind": "video"}, {"kind": "photo"}]))
    result = run_cli(["simulate", "--port", "0", "--jobs-file", str(jobs)], env={})
    assert result.returncode == 2
    assert "item 2: kind must be one of ['lip_sync', 'video'" in result.stderr


# --------------------------------------------------------------------------- the vendor's SDK


@pytest.fixture
def sdk(vendor: Vendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> chanjing.api.ApiClient:
    """The SDK pointed at the simulator; its sleeps advance the simulator's clock instead."""
    for module in (chanjing.api, chanjing.services.tts, chanjing.services.voice_clone):
        monkeypatch.setattr(module, "BASE_URL", vendor.server.url)
    monkeypatch.setattr(
        chanjing.api.RateLimiter,
        "INTERVALS",
        dict.fromkeys(chanjing.api.RateLimiter.INTERVALS, 0.0),
    )
    clock = SimpleNamespace(time=vendor.clock, sleep=vendor.clock.advance)
    for module in (chanjing.services.tts, chanjing.services.voice_clone):
        monkeypatch.setattr(module, "time", clock)
    auth = chanjing.auth.AuthManager("demo-app", "demo-secret", cache_dir=str(tmp_path / "sdk"))
    return chanjing.api.ApiClient(auth)


def test_the_sdk_synthesises_speech_against_the_simulator(
    vendor: Vendor, sdk: chanjing.api.ApiClient
) -> None:
    token = sdk._auth.get_token(sdk)
    service = chanjing.services.tts.TTSService(sdk)
    result = service.synthesize("C-voice", "你好，世界", token)
    assert result.audio_url.startswith("https://") and result.duration > 0
    stats = vendor.sim.stats()
    assert stats["jobs"][f"tts:{result.task_id}"]["status_now"] == 9
    assert stats["by_path"]["/open/v1/audio_task_state"] >= 2  # it saw "1, running" first


def test_the_sdk_sees_a_failed_speech_task_fail(
    vendor: Vendor, sdk: chanjing.api.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sdk._auth.get_token(sdk)
    original = sdk.json_request

    def with_hint(method: str, url: str, **kwargs: Any) -> Any:
        if url.endswith("/create_audio_task"):
            kwargs["json"] = {**kwargs["json"], "_sim": {"outcome": "failed", "msg": "bad text"}}
        return original(method, url, **kwargs)

    monkeypatch.setattr(sdk, "json_request", with_hint)
    with pytest.raises(RuntimeError, match="bad text"):
        chanjing.services.tts.TTSService(sdk).synthesize("C-voice", "hello", token)


def test_the_sdk_polls_a_voice_clone_to_the_end_and_validates_it(
    vendor: Vendor, sdk: chanjing.api.ApiClient, tmp_path: Path
) -> None:
    # The SDK's clone() uploads a file first (an API the simulator does not play): its own
    # create body, poll loop and validity check are what is driven here.
    token = sdk._auth.get_token(sdk)
    created = sdk.json_request(
        "POST",
        f"{vendor.server.url}/open/v1/create_customised_audio",
        rate_category="voice_clone",
        json={
            "name": "clone_1",
            "url": "https://example.invalid/ref.wav",
            "model_type": "cicada3.0-turbo",
        },
        headers={"access_token": token, "Content-Type": "application/json"},
    )
    voice_id = created["data"]
    cache = chanjing.cache.VoiceCloneCache(str(tmp_path / "voices"))
    service = chanjing.services.voice_clone.VoiceCloneService(sdk, cache)
    progress: list[int] = []
    service._poll_clone(voice_id, token, lambda _stage, pct, _msg: progress.append(pct))
    assert progress[-1] == 100 and any(0 < p < 100 for p in progress)
    assert service._validate_voice(voice_id, token)
    assert not service._validate_voice("no-such-voice", token)


def test_the_jobs_file_example_in_the_docs_is_taken(vendor: Vendor) -> None:
    page = (Path(__file__).parents[3] / "docs" / "try-it-locally.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(\[.*?\])\n```", page, re.S)
    specs = json.loads(block)
    assert {spec["kind"] for spec in specs} == {"video", "tts", "voice_clone"}
    resp = vendor.http.post("/_sim/jobs", json=specs)
    assert resp.status_code == 200, resp.text
    assert resp.json()["ids"] == [spec["id"] for spec in specs]
