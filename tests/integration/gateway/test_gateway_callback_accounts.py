"""Issue 22, item 3: a create through the gateway as another account than the default one
gets a callback URL whose route names that account (``…/{token}/{account}/{kind}``), so the
vendor's callback reaches that account's watch; the default account's keeps the short form."""

from __future__ import annotations

from tests.kit.gateway import BETA, CALLBACK_TOKEN, CREATE, Door

HOOK = f"https://notifier.example.com/v1/chanjing/callback/{CALLBACK_TOKEN}"


async def test_the_callback_route_names_a_non_default_account(doors: Door) -> None:
    made = {}
    for name, token in (
        ("alpha", await doors.token()),
        ("beta", await doors.token(BETA.app_id, BETA.secret_key)),
    ):
        body = {"video_file_id": "v", "audio_file_id": "a", "_sim": {"run_s": 3600}}
        answer = (await doors.http.post(CREATE, json=body, headers={"access_token": token})).json()
        assert answer["code"] == 0, answer
        made[name] = answer["data"]
    callbacks = {job.id: job.callback for job in doors.simulator.sim._all_jobs()}
    assert callbacks[made["alpha"]] == HOOK  # the default account: as before
    assert callbacks[made["beta"]] == f"{HOOK}/beta/lip_sync"
