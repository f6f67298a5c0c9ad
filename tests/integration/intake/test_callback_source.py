"""A watch a vendor callback made says so: ``source: callback`` in ``watch list`` (the
table and ``--json``) and in ``GET /v1/watches/{id}``, as discovered ones say
``discovery`` (issue 20, item 8). The callback route and the API over real HTTP on the
state file the CLI then reads."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp.test_utils import TestClient, TestServer

from notifier.intake.callback import VendorCallback
from notifier.intake.http_api import IntakeApi
from notifier.store import Store

if TYPE_CHECKING:
    from tests.kit import Workspace

CALLBACK_TOKEN = "cb-source-0123456789abcdef"
TOKEN = "tok-source-4f1d9c2b7e6a5d3c"


async def test_a_watch_made_by_a_callback_shows_source_callback(workspace: Workspace) -> None:
    store = Store(workspace.state_path)
    api = IntakeApi(store, [TOKEN], ["ops"])
    hook = VendorCallback(api)  # no poll hook: the watch is made, polled in its turn
    hook.configure(CALLBACK_TOKEN, {"by": "hook"}, None)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(api.app())) as client:
        answer = await client.post(
            f"/v1/chanjing/callback/{CALLBACK_TOKEN}", json={"code": 0, "data": {"id": "cbjob1"}}
        )
        assert answer.status == 202
        added = await client.post("/v1/watches", json={"ids": ["apijob1"]}, headers=auth)
        assert added.status == 202
        by_callback = await (await client.get("/v1/watches/cbjob1", headers=auth)).json()
        by_api = await (await client.get("/v1/watches/apijob1", headers=auth)).json()
    store.close()
    assert (by_callback["source"], by_callback["labels"]) == ("callback", {"by": "hook"})
    assert by_api["source"] == "queue"  # through the documented queue, as before

    rows = {r["job_id"]: r for r in json.loads(workspace.cli("watch", "list", "--json").stdout)}
    assert rows["cbjob1"]["source"] == "callback" and rows["apijob1"]["source"] == "queue"
    table = workspace.cli("watch", "list").stdout.splitlines()
    assert "SOURCE" in table[0].split()
    lines = {line.split()[0]: line for line in table[1:]}
    assert "callback" in lines["cbjob1"] and "queue" in lines["apijob1"]


async def test_a_callback_for_a_known_watch_keeps_its_source(workspace: Workspace) -> None:
    store = Store(workspace.state_path)
    api = IntakeApi(store, [TOKEN], ["ops"])
    hook = VendorCallback(api)
    hook.configure(CALLBACK_TOKEN, {}, None)
    async with TestClient(TestServer(api.app())) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            await client.post("/v1/watches", json={"ids": ["job1"]}, headers=auth)
        ).status == 202
        answer = await client.post(
            f"/v1/chanjing/callback/{CALLBACK_TOKEN}", json={"data": {"id": "job1"}}
        )
        assert answer.status == 202
        row = await (await client.get("/v1/watches/job1", headers=auth)).json()
    store.close()
    assert row["source"] == "queue"
