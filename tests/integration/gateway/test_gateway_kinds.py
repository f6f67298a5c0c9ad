"""The gateway with every kind (issue 21, item 7): a create of any kind becomes a watch of
that kind (with a callback naming the kind where the kind takes one), and a watched job's
detail call is absorbed whatever its kind's poll looks like (TTS's is a POST)."""

from __future__ import annotations

from notifier import kinds
from tests.kit.gateway import CALLBACK_TOKEN, Door

HOOK = f"https://notifier.example.com/v1/chanjing/callback/{CALLBACK_TOKEN}"


async def test_a_create_of_each_kind_becomes_a_watch_of_that_kind(door: Door) -> None:
    token = await door.token()
    for kind in kinds.KINDS.values():
        assert kind.create_path is not None
        answer = (
            await door.http.post(
                kind.create_path,
                json={"_sim": {"run_s": 30}},
                headers={"access_token": token, "x-notifier-label": f"kind={kind.name}"},
            )
        ).json()
        assert answer["code"] == 0, (kind.name, answer)
        data = answer["data"]
        job_id = data if isinstance(data, str) else data[kind.create_id]
        watch = door.store.watch_summary(job_id, kind=kind.name)
        assert watch is not None and watch["state"] == "active", kind.name
        assert watch["labels"] == {"kind": kind.name}
        assert (
            door.store.watch_summary(
                job_id, kind="lip_sync" if kind.name != "lip_sync" else "video"
            )
            is None
        )
        job = door.simulator.sim._kind_jobs[kind.name][job_id]
        suffix = "" if kind.name == "lip_sync" else f"/{kind.name}"
        assert job.callback == (HOOK + suffix if kind.callback else None), kind.name


async def test_a_watched_tts_tasks_post_detail_is_absorbed_while_fresh(door: Door) -> None:
    token = await door.token()
    tts = kinds.TTS
    task = (
        await door.http.post(
            tts.create_path or "",
            json={"_sim": {"queue_s": 0, "run_s": 0}},
            headers={"access_token": token},
        )
    ).json()["data"]["task_id"]
    poll = {"json": {"task_id": task}, "headers": {"access_token": token}}
    first = (await door.http.post(tts.poll.path, **poll)).json()  # forwarded: its poll
    assert first["code"] == 0 and first["data"]["status"] == 9
    assert door.store.watch_summary(task, kind="tts")["state"] == "succeeded"
    again = (await door.http.post(tts.poll.path, **poll)).json()
    assert again["data"] == first["data"]
    assert door.vendor_calls(tts.poll.path) == 1  # the second was absorbed
