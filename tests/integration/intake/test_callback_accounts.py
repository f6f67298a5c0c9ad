"""Issue 22, item 3: the vendor callback's route names the account,
``/v1/chanjing/callback/{token}/{account}/{kind}``, beside ``/{token}/{kind}`` and ``/{token}``
(the default account's); the watch it makes is that account's and the poll it asks for names
it. An unknown account, or no account where none is the default, is a 400 that says how; a
wrong token is still the 404 of an unknown path, whatever follows it."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from notifier.intake.callback import VendorCallback
from notifier.intake.http_api import IntakeApi
from notifier.store import Store
from notifier.watchspec import AccountRule
from tests.kit import Workspace

CALLBACK_TOKEN = "cb-accounts-0123456789abcdef"
SHOP_DEFAULT = AccountRule.of(["shop", "media"], "shop")
NO_DEFAULT = AccountRule.of(["shop", "media"], None)


#: The callback route of the configured token.
BASE = f"/v1/chanjing/callback/{CALLBACK_TOKEN}"


def _hook(store: Store, rule: AccountRule) -> tuple[VendorCallback, list[tuple[str, str, str]]]:
    """The callback route on the intake API, under ``rule``; the polls it asks for."""
    api = IntakeApi(store, [], ["ops"], accounts=rule)
    polls: list[tuple[str, str, str]] = []

    def poll_now(job_id: str, kind: str, account: str) -> str:
        polls.append((job_id, kind, account))
        return "polling"

    hook = VendorCallback(api, poll_now)
    hook.configure(CALLBACK_TOKEN, {}, None, rule)
    return hook, polls


def _body(job_id: str) -> dict[str, object]:
    return {"code": 0, "msg": "success", "data": {"id": job_id, "status": 20}}


async def test_the_route_names_the_account_of_the_watch(workspace: Workspace) -> None:
    store = Store(workspace.state_path)
    hook, polls = _hook(store, SHOP_DEFAULT)
    async with TestClient(TestServer(hook.api.app())) as client:
        for path, job_id in [
            (BASE, "j1"),
            (f"{BASE}/video", "j2"),
            (f"{BASE}/media/video", "j2"),  # the same id on another account: another watch
            (f"{BASE}/media/lip_sync", "j1"),
        ]:
            answer = await client.post(path, json=_body(job_id))
            assert answer.status == 202, await answer.text()
        unknown = await client.post(f"{BASE}/nope/video", json=_body("j3"))
        assert unknown.status == 400
        assert (await unknown.json())["error"] == (
            "the account in the path: unknown account 'nope' (configured: shop, media); the "
            "callback URL of another account's job is "
            "/v1/chanjing/callback/{token}/{account}/{kind}"
        )
        wrong = await client.post(
            f"/v1/chanjing/callback/{CALLBACK_TOKEN}x/media/video", json=_body("j4")
        )
        assert wrong.status == 404
    watches = {(w["account"], w["kind"], w["job_id"]) for w in store.list_watches()}
    store.close()
    assert watches == {
        ("shop", "lip_sync", "j1"),
        ("shop", "video", "j2"),
        ("media", "video", "j2"),
        ("media", "lip_sync", "j1"),
    }
    assert polls == [
        ("j1", "lip_sync", "shop"),
        ("j2", "video", "shop"),
        ("j2", "video", "media"),
        ("j1", "lip_sync", "media"),
    ]


async def test_without_a_default_account_the_route_must_name_one(workspace: Workspace) -> None:
    store = Store(workspace.state_path)
    hook, polls = _hook(store, NO_DEFAULT)
    async with TestClient(TestServer(hook.api.app())) as client:
        for path in (BASE, f"{BASE}/video"):
            refused = await client.post(path, json=_body("j1"))
            assert refused.status == 400
            assert (await refused.json())["error"].startswith(
                "the path: name the account (several configured and none marked default: "
                "shop, media); the callback URL of another account's job is "
            )
        assert (await client.post(f"{BASE}/shop/video", json=_body("j1"))).status == 202
    watches = [(w["account"], w["job_id"]) for w in store.list_watches()]
    store.close()
    assert watches == [("shop", "j1")]
    assert polls == [("j1", "video", "shop")]
