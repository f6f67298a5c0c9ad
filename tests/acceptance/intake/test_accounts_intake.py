"""Issue 22, items 3 and 4, through the real daemon with two vendor accounts (``shop`` and
``media``, none marked default) on a simulator that keeps each account's jobs apart: a job
reaches its account's watch by each intake path — the watch file's ``account:``, ``watch add
--account``, a queue row's account column, the API body of a token limited to shop, the
vendor callback's ``/{token}/{account}/{kind}`` route — and is polled by its own account's
lane (on the wrong account the simulator answers 40000 and the watch would end rejected,
without its event). The same id on both accounts is two watches, each with its own outcome.
A queue row naming an unknown account is kept with the reason. On the live API, each
limited token sees and touches only its account's watches, and pages through its
account's events only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.models import WatchSpec
from notifier.store import Store
from tests.kit import (
    APP_ID,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
    free_port,
)
from tests.kit.accounts import SHOP_APP, SHOP_QPS, SHOP_SECRET, two_account_simulator
from tests.kit.kind_jobs import job_events

pytestmark = pytest.mark.slow

ALL_TOKEN = "tok-all-2b3c4d5e6f7a8b9c"
SHOP_TOKEN = "tok-shop-7a6b5c4d3e2f1a0b"
MEDIA_TOKEN = "tok-media-0f1e2d3c4b5a6978"
CALLBACK_TOKEN = "cb-accounts-9a8b7c6d5e4f3a2b"


@pytest.fixture(name="two_accounts")
def two_accounts_fixture() -> Iterator[Simulator]:
    with two_account_simulator(seed=11) as sim:
        yield sim


def _workspace(tmp_path: Path, sim: Simulator, receiver: ReceiverServer) -> tuple[Workspace, str]:
    """Two accounts, none marked default; the intake API with a token for each and one for
    both; the vendor callback."""
    config = base_config(tmp_path, sim.url, receiver.url)
    media = config.pop("chanjing")
    config["accounts"] = [
        {**media, "name": "shop", "app_id": SHOP_APP, "secret_key": SHOP_SECRET, "qps": SHOP_QPS},
        {"name": "media", **media},
    ]
    port = free_port()
    config["intake"] = {
        "listen": f"127.0.0.1:{port}",
        "tokens": [
            ALL_TOKEN,
            {"token": SHOP_TOKEN, "accounts": ["shop"]},
            {"token": MEDIA_TOKEN, "accounts": ["media"]},
        ],
        "callback_token": CALLBACK_TOKEN,
    }
    workspace = Workspace(tmp_path, config, daemon_env(receiver.url))
    workspace.write_config()
    return workspace, f"http://127.0.0.1:{port}"


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _all_events(client: httpx.Client) -> list[dict[str, Any]]:
    """Every event the token may read, two a page (so a page boundary falls between
    accounts' events)."""
    events: list[dict[str, Any]] = []
    after = ""
    while page := client.get("/v1/events", params={"after": after, "limit": 2}).json()["events"]:
        events += page
        after = page[-1]["id"]
    return events


def test_every_intake_path_names_the_account_and_each_token_sees_its_own(
    tmp_path: Path, two_accounts: Simulator, receiver: ReceiverServer
) -> None:
    sim = two_accounts.sim
    workspace, url = _workspace(tmp_path, two_accounts, receiver)
    run = {"queue_s": 0.2, "run_s": 1.0}
    jobs: dict[str, str] = {}  # job id -> account, for the paths that give an id
    for path, account, app_id in [
        ("file", "shop", SHOP_APP),
        ("file", "media", None),
        ("cli", "media", None),
        ("queue", "shop", SHOP_APP),
        ("api", "shop", SHOP_APP),
    ]:
        jobs[sim.add_job(f"{path}-{account}", account=app_id, **run)] = account
    # The same id on both accounts: two jobs at the vendor, two watches here.
    sim.add_job("same-id", account=SHOP_APP, outcome="succeeded", **run)
    sim.add_job("same-id", account=APP_ID, outcome="failed", **run)
    workspace.write_watch(
        [
            {"id": "file-shop", "account": "shop"},
            {"id": "file-media", "account": "media"},
            {"id": "same-id", "account": "shop"},
            {"id": "same-id", "account": "media"},
        ]
    )
    daemon = workspace.start()
    try:
        daemon.wait_ready()
        workspace.cli("watch", "add", "cli-media", "--account", "media")
        store = Store(workspace.state_path)
        try:  # as any program writes the queue: the account column
            store.enqueue([WatchSpec("queue-shop", account="shop")])
            store.enqueue([WatchSpec("queue-nope", account="nope")])
        finally:
            store.close()
        with _client(url, SHOP_TOKEN) as shop:
            added = shop.post("/v1/watches", json={"ids": ["api-shop"]})
            assert added.status_code == 202 and added.json()["account"] == "shop", added.text
        # A job of media's whose vendor callback names its account: the watch is made by it.
        callback = f"{url}/v1/chanjing/callback/{CALLBACK_TOKEN}/media/lip_sync"
        sim.add_job("cb-media", account=APP_ID, callback=callback, **run)
        jobs["cb-media"] = "media"

        rec = receiver.receiver
        wanted = {*jobs, "same-id"}
        assert rec.wait_for_blocking(
            lambda r: (
                {job_id for job_id, _type in job_events(r)} >= wanted
                and ("same-id", "lip_sync.failed") in job_events(r)
            ),
            60,
        ), rec.summary()
        got = job_events(rec)
        assert {t for (j, t) in got if j in jobs} == {"lip_sync.succeeded"}, got
        assert {t for (j, t) in got if j == "same-id"} == {"lip_sync.succeeded", "lip_sync.failed"}
        stats = sim.stats()["accounts"]
        for app_id in (APP_ID, SHOP_APP):  # no lane asked the other account's vendor side
            assert "40000" not in stats[app_id]["codes"], (app_id, stats[app_id]["codes"])

        listed = {(w["account"], w["job_id"]): w for w in workspace.cli_json("watch", "list")}
        assert {key for key in listed if key[1] != "same-id"} == {
            (account, job_id) for job_id, account in jobs.items()
        }
        assert listed[("shop", "same-id")]["state"] == "succeeded"
        assert listed[("media", "same-id")]["state"] == "failed"
        assert listed[("media", "cb-media")]["source"] == "callback"
        only_shop = workspace.cli_json("watch", "list", "--account", "shop")
        assert {w["account"] for w in only_shop} == {"shop"}
        [refused] = workspace.cli_json("watch", "rejected")
        assert (refused["job_id"], refused["account"]) == ("queue-nope", "nope")
        assert refused["rejected"] == "account: unknown account 'nope' (configured: shop, media)"

        with _client(url, SHOP_TOKEN) as shop, _client(url, MEDIA_TOKEN) as media:
            assert shop.get("/v1/watches/file-shop").json()["account"] == "shop"
            for path in ("/v1/watches/file-media", "/v1/watches/file-media?account=media"):
                assert shop.get(path).status_code == 404
                assert shop.delete(path).status_code == 404
            assert media.get("/v1/watches/file-media").json()["state"] == "succeeded"
            assert media.get("/v1/watches/same-id").json()["state"] == "failed"
            assert shop.get("/v1/watches/same-id").json()["state"] == "succeeded"
            # Each pages through its own account's events only, as the receiver got them.
            for client, account in ((shop, "shop"), (media, "media")):
                events = _all_events(client)
                assert {e["data"]["account"] for e in events} == {account}
                mine = {j for j, a in jobs.items() if a == account} | {"same-id"}
                assert {e["data"]["id"] for e in events} == mine
        with _client(url, ALL_TOKEN) as everyone:
            need = everyone.get("/v1/watches/same-id")
            assert need.status_code == 400, need.text  # two accounts, none the default
            assert len(_all_events(everyone)) >= len(jobs) + 2
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output
