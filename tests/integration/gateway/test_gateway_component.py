"""The gateway's behaviour over real HTTP: an application's client → the gateway (its server,
the real vendor client and limiter, a real store) → the vendor simulator; on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from notifier.polling.ratelimit import LimiterSettings
from notifier.service.settings import gateway_settings
from tests.kit import SECRET_KEY, StoreFactory
from tests.kit.gateway import CALLBACK_TOKEN, CREATE, DETAIL, Door, config_for


async def test_tokens_for_the_account_and_for_clients_wrong_ones_say_nothing(door: Door) -> None:
    assert (await door.token()).startswith("gw1.")
    assert (await door.token("shop-app", "shop-secret-1")).startswith("gw1.")
    answers = [
        (await door.http.post("/open/v1/access_token", json=body)).json()
        for body in (
            {"app_id": "test-app", "secret_key": "wrong"},
            {"app_id": "nobody", "secret_key": SECRET_KEY},
            {"app_id": "shop-app", "secret_key": SECRET_KEY},
        )
    ]
    assert {(a["code"], a["msg"]) for a in answers} == {
        (40000, "app_id or secret_key is incorrect")
    }
    # Issuing gateway tokens costs the vendor nothing and revokes nothing.
    assert door.simulator.sim.stats()["tokens_issued"] == 0


async def test_a_create_is_forwarded_with_our_token_and_callback_and_becomes_a_watch(
    door: Door,
) -> None:
    token = await door.token("shop-app", "shop-secret-1")
    response = await door.http.post(
        CREATE,
        json={"video_file_id": "v", "audio_file_id": "a", "_sim": {"run_s": 30}},
        headers={
            "access_token": token,
            "x-notifier-label": "order=42, shop=eu",
            "x-notifier-endpoint": "ops",
        },
    )
    answer = response.json()
    assert response.status_code == 200 and answer["code"] == 0, answer
    job_id = answer["data"]
    watch = door.store.watch_summary(job_id)
    assert watch is not None and watch["state"] == "active"
    assert watch["labels"] == {"order": "42", "shop": "eu"}
    assert watch["endpoints"] == ["ops"]
    assert door.simulator.sim._jobs[job_id].callback == (
        f"https://notifier.example.com/v1/chanjing/callback/{CALLBACK_TOKEN}"
    )
    # A callback the application gave is kept as it is.
    answer = (
        await door.http.post(
            CREATE,
            json={"video_file_id": "v", "callback": "https://app.example.com/cb"},
            headers={"access_token": token},
        )
    ).json()
    assert door.simulator.sim._jobs[answer["data"]].callback == "https://app.example.com/cb"


async def test_a_bad_label_header_is_refused_before_anything_is_created(door: Door) -> None:
    token = await door.token()
    for header in ({"x-notifier-label": "no-equals"}, {"x-notifier-endpoint": "nowhere"}):
        response = await door.http.post(
            CREATE, json={"video_file_id": "v"}, headers={"access_token": token, **header}
        )
        assert response.status_code == 400, response.text
        assert next(iter(header)) in response.json()["error"]
    assert door.vendor_calls(CREATE) == 0


async def test_a_watched_jobs_detail_is_absorbed_while_fresh_and_for_ever_once_final(
    door: Door,
) -> None:
    token = await door.token()
    running = door.simulator.sim.add_job(queue_s=0, run_s=3600)
    done = door.simulator.sim.add_job(queue_s=0, run_s=0)
    for job_id in (running, done):
        created = await door.http.get(
            DETAIL, params={"id": job_id}, headers={"access_token": token}
        )
        assert created.json()["code"] == 0
    # Not watched yet: both were forwarded.
    assert door.vendor_calls(DETAIL) == 2
    from notifier.intake.adding import add_watches

    add_watches(door.store, [running, done], {}, None, [])
    first = {}
    for job_id in (running, done):  # forwarded: each counts as the watch's poll
        first[job_id] = (
            await door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
        ).json()
    assert door.vendor_calls(DETAIL) == 4
    assert door.store.watch_summary(done)["state"] == "succeeded"
    for job_id in (running, done):
        again = (
            await door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
        ).json()
        assert again["data"] == first[job_id]["data"]
        assert again["trace_id"] != first[job_id]["trace_id"]
    assert door.vendor_calls(DETAIL) == 4  # both absorbed
    # Past min_interval the running one goes to the vendor again; the finished one never.
    door.gateway.min_interval = -1.0  # every observation is too old now
    for job_id in (running, done):
        await door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
    assert door.vendor_calls(DETAIL) == 5


async def test_the_daemons_token_revoked_by_someone_else_is_refreshed_unseen(door: Door) -> None:
    token = await door.token()
    job_id = door.simulator.sim.add_job(queue_s=0, run_s=60)
    for _ in range(3):
        answer = (
            await door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
        ).json()
        assert answer["code"] == 0, answer
        door.simulator.sim.revoke_token()
    assert door.simulator.sim.stats()["tokens_issued"] == 3


async def test_no_valid_gateway_token_gets_10400_and_no_vendor_call(door: Door) -> None:
    for headers in ({}, {"access_token": "gw1.abc.def"}, {"access_token": "vendor-token"}):
        answer = (await door.http.get(DETAIL, params={"id": "x"}, headers=headers)).json()
        assert answer["code"] == 10400
    assert door.simulator.sim.stats()["calls"] == 0


async def test_only_the_vendor_api_and_its_methods_and_sizes_pass(door: Door) -> None:
    token = await door.token()
    headers = {"access_token": token}
    for path in ("/_sim/stats", "/open/v2/x", "/open/v1/%2e%2e/x", "/open/v1//x", "/"):
        response = await door.http.get(path, headers=headers)
        assert response.status_code == 404, path
    assert (await door.http.delete(DETAIL, headers=headers)).status_code == 405
    assert (await door.http.get("/open/v1/access_token")).status_code == 405
    big = b"{" + b" " * (1024 * 1024) + b"}"
    response = await door.http.post(CREATE, content=big, headers=headers)
    assert response.status_code == 413
    assert door.simulator.sim.stats()["calls"] == 0


async def test_a_call_that_cannot_get_a_turn_in_time_gets_40001(door: Door, tmp_path: Path) -> None:
    door.gateway.configure(
        gateway_settings(config_for(tmp_path, door.simulator, max_wait="1500ms", share=0))
    )
    door.vendor.limiter.configure(LimiterSettings(1))
    token = await door.token()
    await door.vendor.token()  # the vendor token first: each call below waits for a turn only
    job_id = door.simulator.sim.add_job(queue_s=0, run_s=600)
    answers = await asyncio.gather(
        *(
            door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
            for _ in range(6)
        )
    )
    codes = sorted(a.json()["code"] for a in answers)
    assert 40001 in codes and 0 in codes, codes
    stats = door.simulator.sim.stats()
    assert stats["max_per_second"] <= 1
    assert "40001" not in stats["codes"]  # the vendor never had to say it


async def test_a_call_waiting_for_the_vendor_token_past_max_wait_gets_40001(
    door: Door, tmp_path: Path, make_store: StoreFactory
) -> None:
    door.gateway.configure(gateway_settings(config_for(tmp_path, door.simulator, max_wait="500ms")))
    token = await door.token()
    other = make_store()  # another process fetching the vendor token, for a long while
    assert other.try_token_lock()
    try:
        response = await door.http.get(DETAIL, params={"id": "x"}, headers={"access_token": token})
    finally:
        other.release_token_lock()
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 40001
    assert door.simulator.sim.stats()["calls"] == 0


async def test_a_state_that_cannot_be_read_gets_503_not_a_traceback(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifier.store import StoreUnavailable

    def gone() -> bytes:
        # Stands in for a state that went away (disk, server): the key is read from it once.
        raise StoreUnavailable(door.store.where, "the server is unreachable", "test")

    monkeypatch.setattr(door.store, "gateway_key", gone)
    response = await door.http.post(
        "/open/v1/access_token", json={"app_id": "test-app", "secret_key": SECRET_KEY}
    )
    assert response.status_code == 503
    assert "state" in response.json()["error"]


async def test_watched_jobs_seen_too_long_ago_are_seen_by_one_sweep_not_a_call_each(
    door: Door,
) -> None:
    """An application asking about watched jobs the daemon has not seen lately: the gateway
    asks for a list sweep (one call for a page of jobs) and answers from what it saw."""
    from notifier.intake.adding import add_watches

    jobs = [door.simulator.sim.add_job(queue_s=0, run_s=3600) for _ in range(5)]
    add_watches(door.store, jobs, {}, None, [])  # watched, never seen
    door.poller.list_sweep = True
    token = await door.token()
    answers = [
        (await door.http.get(DETAIL, params={"id": j}, headers={"access_token": token})).json()
        for j in jobs
    ]
    assert [a["data"]["id"] for a in answers] == jobs
    assert door.vendor_calls(DETAIL) == 0
    assert door.vendor_calls("/open/v1/video_lip_sync/list") == 1
    # Not a sweep per call: the next ones within half a min_interval find it done.
    unwatched = door.simulator.sim.add_job(queue_s=0, run_s=3600)
    await door.http.get(DETAIL, params={"id": unwatched}, headers={"access_token": token})
    assert door.vendor_calls("/open/v1/video_lip_sync/list") == 1
    assert door.vendor_calls(DETAIL) == 1  # not watched: forwarded


async def test_a_create_while_the_state_cannot_be_written_still_answers_and_is_watched_later(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application gets the vendor's answer; the id is kept and watched once the state
    can be written again (a full disk cannot be made here: the write fails as it would)."""
    from notifier.store import StoreUnavailable

    real = door.store.add_watches

    def full(*_args: object) -> tuple[int, int]:
        raise StoreUnavailable(door.store.where, "the disk is full", "test")

    monkeypatch.setattr(door.store, "add_watches", full)
    token = await door.token()
    answer = (
        await door.http.post(CREATE, json={"video_file_id": "v"}, headers={"access_token": token})
    ).json()
    assert answer["code"] == 0, answer
    job_id = answer["data"]
    assert door.store.watch_summary(job_id) is None
    assert list(door.gateway.pending) == [("default", "lip_sync", job_id)]
    assert door.gateway.flush() == 1  # still full: kept
    monkeypatch.setattr(door.store, "add_watches", real)
    assert door.gateway.flush() == 0
    watch = door.store.watch_summary(job_id)
    assert watch is not None and watch["state"] == "active"
    assert door.gateway.pending == {}
