"""The gateway with two vendor accounts on one simulator (issue 22, items 2-4), over real
HTTP: a call is made as the account whose credentials (its own, or a gateway client's) got
the token — through that account's budget, vendor token and watches, counted on that
account by the simulator — and never sees or spends another account's."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from notifier.polling.ratelimit import LimiterSettings
from notifier.service.settings import gateway_settings
from notifier.watchspec import watch_specs
from tests.kit import APP_ID, SECRET_KEY, Simulator, StoreFactory
from tests.kit.gateway import BETA, BETA_CLIENT, CREATE, DETAIL, Door, config_for, open_door
from tests.kit.waits import until

RECORD_NOT_FOUND = (40000, "record not found")


async def detail(door: Door, token: str, job_id: str) -> dict[str, Any]:
    answer = await door.http.get(DETAIL, params={"id": job_id}, headers={"access_token": token})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def create(door: Door, token: str) -> str:
    body = {"video_file_id": "v", "audio_file_id": "a", "_sim": {"queue_s": 0, "run_s": 3600}}
    answer = (await door.http.post(CREATE, json=body, headers={"access_token": token})).json()
    assert answer["code"] == 0, answer
    job_id: str = answer["data"]
    return job_id


async def test_each_call_is_made_as_the_account_whose_credentials_got_its_token(
    doors: Door,
) -> None:
    alpha = await doors.token()  # the account's own app_id/secret_key
    shop = await doors.token("shop-app", "shop-secret-1")  # a client naming no account
    beta = await doors.token(BETA.app_id, BETA.secret_key)
    beta_shop = await doors.token(BETA_CLIENT["app_id"], BETA_CLIENT["secret_key"])
    sim = doors.simulator.sim
    on_alpha = sim.add_job(queue_s=0, run_s=3600)
    on_beta = sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)

    for token in (alpha, shop):
        assert (await detail(doors, token, on_alpha))["data"]["id"] == on_alpha
        answer = await detail(doors, token, on_beta)  # the vendor's answer to alpha
        assert (answer["code"], answer["msg"]) == RECORD_NOT_FOUND
    for token in (beta, beta_shop):
        assert (await detail(doors, token, on_beta))["data"]["id"] == on_beta
        answer = await detail(doors, token, on_alpha)
        assert (answer["code"], answer["msg"]) == RECORD_NOT_FOUND
    assert doors.vendor_calls(DETAIL, APP_ID) == 4
    assert doors.vendor_calls(DETAIL, BETA.app_id) == 4

    # A create is a watch of the account that made it, and only of that one.
    made_by_beta = await create(doors, beta_shop)
    made_by_alpha = await create(doors, shop)
    assert doors.vendor_calls(CREATE, BETA.app_id) == 1
    assert doors.vendor_calls(CREATE, APP_ID) == 1
    store = doors.store
    assert store.get_watch(made_by_beta, account="beta") is not None
    assert store.get_watch(made_by_beta, account="alpha") is None
    assert store.get_watch(made_by_alpha, account="alpha") is not None
    assert store.get_watch(made_by_alpha, account="beta") is None
    # Each account's own vendor token, fetched once; the gateway tokens cost nothing.
    accounts = sim.stats()["accounts"]
    assert {app: a["tokens_issued"] for app, a in accounts.items()} == {APP_ID: 1, BETA.app_id: 1}
    assert "10400" not in sim.stats()["codes"]


async def test_a_client_of_one_account_never_gets_another_accounts_observation(
    doors: Door,
) -> None:
    """Beta watches a job; alpha asks for the same id (alpha has a job of that id too): it is
    forwarded as alpha, and the vendor answers alpha's job, never what beta saw."""
    beta = await doors.token(BETA_CLIENT["app_id"], BETA_CLIENT["secret_key"])
    alpha = await doors.token()
    job_id = await create(doors, beta)  # beta watches it
    first = await detail(doors, beta, job_id)  # forwarded: beta's watch's poll
    assert first["data"]["status"] != 20
    seen = doors.store.last_observation(job_id, account="beta")
    assert seen is not None and seen.data == first["data"]
    again = await detail(doors, beta, job_id)
    assert again["data"] == first["data"]
    assert doors.vendor_calls(DETAIL, BETA.app_id) == 1  # the second was absorbed

    # Not alpha's job: the vendor says so, to alpha.
    answer = await detail(doors, alpha, job_id)
    assert (answer["code"], answer["msg"], answer["data"]) == (*RECORD_NOT_FOUND, None)
    # The same id on alpha is alpha's own job, finished: that is what alpha hears.
    doors.simulator.sim.add_job(job_id, queue_s=0, run_s=0, account=APP_ID)
    answer = await detail(doors, alpha, job_id)
    assert answer["code"] == 0 and answer["data"]["status"] == 20, answer
    assert doors.vendor_calls(DETAIL, APP_ID) == 2
    assert doors.vendor_calls(DETAIL, BETA.app_id) == 1
    # Alpha's answers were not beta's watch's polls, nor a watch of alpha's.
    assert doors.store.last_observation(job_id, account="beta") == seen
    assert doors.store.last_observation(job_id, account="alpha") is None


async def test_one_account_saturating_its_budget_does_not_slow_another(doors: Door) -> None:
    """Alpha's application queues far more calls than its 1 call/s; beta's calls meanwhile
    go straight through beta's own budget, and each account stays within its own qps."""
    lanes = doors.lanes
    lanes["alpha"].vendor.limiter.configure(LimiterSettings(1))
    doors.gateway.max_wait = 120.0  # alpha's calls wait their turn rather than get 40001
    for lane in lanes.values():
        await lane.vendor.token()  # each account's vendor token first
    alpha, beta = await doors.token(), await doors.token(BETA.app_id, BETA.secret_key)
    sim = doors.simulator.sim
    on_alpha = sim.add_job(queue_s=0, run_s=3600)
    on_beta = sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)
    queued = [asyncio.create_task(detail(doors, alpha, on_alpha)) for _ in range(15)]
    try:
        assert await until(lambda: doors.vendor_calls(DETAIL, APP_ID) >= 2, timeout=30)
        answers = [await detail(doors, beta, on_beta) for _ in range(10)]
        # All of beta's were answered while most of alpha's still wait at alpha's budget
        # (15 at 1/s: over 12 s; beta's ten are ten local round trips).
        assert sum(task.done() for task in queued) < 10
        assert {a["code"] for a in answers} == {0}
        assert doors.vendor_calls(DETAIL, BETA.app_id) == 10
    finally:
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
    accounts = sim.stats()["accounts"]
    assert accounts[APP_ID]["max_per_second"] <= 1, accounts[APP_ID]["per_second"]
    assert accounts[BETA.app_id]["max_per_second"] <= 10
    assert "40001" not in sim.stats()["codes"]


async def test_a_restarted_gateway_keeps_each_tokens_account(
    tmp_path: Path, doors: Door, two_simulator: Simulator, make_store: StoreFactory
) -> None:
    """Tokens are signed with the state's key and carry their account: a new gateway on the
    same state (a restart, or another node) makes a token's calls as the same account."""
    beta = await doors.token(BETA_CLIENT["app_id"], BETA_CLIENT["secret_key"])
    alpha = await doors.token(APP_ID, SECRET_KEY)
    on_beta = two_simulator.sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)
    config = config_for(tmp_path, two_simulator, accounts=True)
    async with open_door(make_store(), two_simulator, config) as restarted:
        assert (await detail(restarted, beta, on_beta))["data"]["id"] == on_beta
        answer = await detail(restarted, alpha, on_beta)
        assert (answer["code"], answer["msg"]) == RECORD_NOT_FOUND
    assert restarted.vendor_calls(DETAIL, BETA.app_id) == 1
    assert restarted.vendor_calls(DETAIL, APP_ID) == 1


async def test_a_client_moved_to_another_account_by_a_reload_fetches_a_new_token(
    tmp_path: Path, doors: Door
) -> None:
    """A token is its account's for its whole life: a reload that moves the client makes
    its tokens invalid (10400, so SDKs fetch again), and the new ones are the new account's."""
    old = await doors.token("shop-app", "shop-secret-1")  # alpha's, the default
    on_beta = doors.simulator.sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)
    moved = [
        {"name": "shop", "app_id": "shop-app", "secret_key": "shop-secret-1", "account": "beta"}
    ]
    doors.gateway.configure(
        gateway_settings(config_for(tmp_path, doors.simulator, accounts=True, clients=moved))
    )
    answer = await detail(doors, old, on_beta)
    assert answer["code"] == 10400, answer
    new = await doors.token("shop-app", "shop-secret-1")
    assert (await detail(doors, new, on_beta))["data"]["id"] == on_beta
    assert doors.vendor_calls(DETAIL, BETA.app_id) == 1
    assert doors.vendor_calls(DETAIL, APP_ID) == 0


async def test_one_id_watched_on_two_accounts_each_forwarded_answer_is_its_accounts_poll(
    doors: Door,
) -> None:
    """The same id on both accounts is two jobs and two watches: a forwarded detail answer
    is recorded on the asking account's watch only, and each is then absorbed from its own."""
    sim, store = doors.simulator.sim, doors.store
    job_id = "same-id-on-two-accounts"
    sim.add_job(job_id, queue_s=0, run_s=0, account=APP_ID)  # alpha's: finished
    sim.add_job(job_id, queue_s=0, run_s=3600, account=BETA.app_id)  # beta's: running
    specs = watch_specs([job_id])
    store.add_watches([replace(s, account=a) for s in specs for a in ("alpha", "beta")], "test")
    alpha = await doors.token()
    beta = await doors.token(BETA.app_id, BETA.secret_key)

    done = await detail(doors, alpha, job_id)
    assert done["data"]["status"] == 20, done
    alpha_seen = store.last_observation(job_id, account="alpha")
    assert alpha_seen is not None and alpha_seen.state == "succeeded"
    beta_seen = store.last_observation(job_id, account="beta")
    assert beta_seen is not None and beta_seen.state == "active" and beta_seen.data is None
    running = await detail(doors, beta, job_id)
    assert running["data"]["status"] != 20, running
    beta_seen = store.last_observation(job_id, account="beta")
    assert beta_seen is not None and beta_seen.data == running["data"]
    assert beta_seen.state == "active"
    # Each account's next call is absorbed from its own watch.
    assert (await detail(doors, alpha, job_id))["data"] == done["data"]
    assert (await detail(doors, beta, job_id))["data"] == running["data"]
    assert doors.vendor_calls(DETAIL, APP_ID) == doors.vendor_calls(DETAIL, BETA.app_id) == 1
