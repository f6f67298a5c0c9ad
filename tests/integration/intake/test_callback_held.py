"""The memory for vendor callbacks the state cannot take is bounded (issue 19, item 5): the
callback route over real HTTP on a real SQLite file that another program holds locked.
Within the bound each is answered 202 and made a watch once the lock is gone; past it the
answer is the 503 of before, with the id logged and counted as ``lost``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from notifier.intake import callback as callback_module
from notifier.intake.callback import VendorCallback
from notifier.intake.http_api import IntakeApi
from notifier.store import Store

TOKEN = "cb-held-0123456789abcdef"


async def test_callbacks_past_the_bound_are_answered_503_logged_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callback_module, "HELD_MAX", 2)
    path = tmp_path / "state.db"
    store = Store(path, busy_timeout=0.05)
    seen: list[str] = []
    api = IntakeApi(store, [], [])
    hook = VendorCallback(api, observer=seen.append)  # no poll hook: watched unverified
    hook.configure(TOKEN, {}, None)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    async with TestClient(TestServer(api.app())) as client:
        with capture_logs() as logs:
            statuses = []
            for job_id in ("heldjob1", "heldjob2", "lostjob3"):
                body = {"code": 0, "data": {"id": job_id}}
                answer = await client.post(f"/v1/chanjing/callback/{TOKEN}", json=body)
                statuses.append(answer.status)
    other.execute("ROLLBACK")
    other.close()
    assert statuses == [202, 202, 503]
    assert seen == ["held", "held", "lost"]
    (lost,) = [r for r in logs if r["event"].startswith("vendor callback lost")]
    assert lost["job_id"] == "lostjob3"
    held = [("heldjob1", "lip_sync", "default"), ("heldjob2", "lip_sync", "default")]
    assert list(hook.held) == held
    # The lock is gone: the daemon's probe finds the state writable, its queue tick flushes.
    assert store.writable()
    assert hook.flush() == 0
    assert {w["job_id"] for w in store.list_watches()} == {"heldjob1", "heldjob2"}
    assert hook.held == {}
    store.close()
