"""Two vendor accounts in one daemon process (issue 22): each account's lane polls only its
own watches, with its own token and budget. Were a lane to poll the other account's watch,
the simulator (which keeps each account's jobs apart) would answer 40000 and the watch would
end rejected instead of with its event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
)
from tests.kit.accounts import SHOP_APP, SHOP_SECRET, two_account_simulator
from tests.kit.kind_jobs import job_events

pytestmark = pytest.mark.slow


@pytest.fixture(name="two_accounts")
def two_accounts_fixture() -> Iterator[Simulator]:
    with two_account_simulator() as sim:
        yield sim


def _workspace(tmp_path: Path, sim: Simulator, receiver: ReceiverServer) -> Workspace:
    """The test config with two accounts: ``default`` (the simulator's first) and ``shop``."""
    config = base_config(tmp_path, sim.url, receiver.url)
    default = config.pop("chanjing")
    config["accounts"] = [
        {"name": "default", **default},
        {**default, "name": "shop", "app_id": SHOP_APP, "secret_key": SHOP_SECRET, "qps": 5},
    ]
    workspace = Workspace(tmp_path, config, daemon_env(receiver.url))
    workspace.write_config()
    workspace.write_watch([])
    return workspace


def _watch(workspace: Workspace, jobs: dict[str, str]) -> None:
    """Watch ``jobs`` ({id: account}) as any program may: rows written into the state."""
    store = Store(workspace.state_path)
    try:
        store.add_watches([WatchSpec(j, account=a) for j, a in jobs.items()], "queue")
    finally:
        store.close()


def _await_events(receiver: ReceiverServer, jobs: dict[str, str]) -> dict[tuple[str, str], Any]:
    rec = receiver.receiver
    assert rec.wait_for_blocking(
        lambda r: {job_id for job_id, _type in job_events(r)} >= set(jobs), 60
    ), rec.summary()
    return job_events(rec)


def test_each_lane_polls_its_own_accounts_watches(
    tmp_path: Path, two_accounts: Simulator, receiver: ReceiverServer
) -> None:
    workspace = _workspace(tmp_path, two_accounts, receiver)
    sim = two_accounts.sim
    jobs: dict[str, str] = {}  # job id -> account
    for account, app_id in (("default", None), ("shop", SHOP_APP)):
        for outcome in ("succeeded", "failed", "succeeded"):
            job_id = sim.add_job(queue_s=0.2, run_s=1.0, outcome=outcome, account=app_id)
            jobs[job_id] = account
    daemon = workspace.start()
    try:
        daemon.wait_ready()
        _watch(workspace, jobs)
        got = _await_events(receiver, jobs)
        assert sorted(t for _j, t in got) == sorted(
            ["lip_sync.succeeded"] * 4 + ["lip_sync.failed"] * 2
        ), got
        stats = sim.stats()
        for app_id in (APP_ID, SHOP_APP):
            seen = stats["accounts"][app_id]
            assert seen["calls"] > 1, (app_id, seen)  # its token, then its list or details
            assert "40000" not in seen["codes"], (app_id, seen["codes"])
            assert seen["tokens_issued"] == 1, (app_id, seen)
        # Each account stayed within its own budget in every second.
        assert stats["accounts"][SHOP_APP]["max_per_second"] <= 5
        assert stats["accounts"][APP_ID]["max_per_second"] <= 10
        listed = {(w["job_id"], w["state"]) for w in workspace.cli_json("watch", "list")}
        assert {state for _j, state in listed} <= {"succeeded", "failed"}, listed
    finally:
        assert daemon.stop() == 0


def test_a_revoked_token_on_one_account_never_touches_the_other(
    tmp_path: Path, two_accounts: Simulator, receiver: ReceiverServer
) -> None:
    """The default account's token is revoked (as another app's token fetch would): that
    account's client fetches a new one; shop's token, calls and jobs go on untouched."""
    workspace = _workspace(tmp_path, two_accounts, receiver)
    sim = two_accounts.sim
    daemon = workspace.start()
    try:
        daemon.wait_ready()
        first = {"warm-a": "default", "warm-b": "shop"}
        for job_id, account in first.items():
            app_id = None if account == "default" else SHOP_APP
            sim.add_job(job_id, queue_s=0.1, run_s=0.3, account=app_id)
        _watch(workspace, first)
        _await_events(receiver, first)
        shop_token = sim.current_token(SHOP_APP)
        sim.revoke_token()  # the default account's
        later: dict[str, str] = {}
        for n in range(3):
            for account, app_id in (("default", None), ("shop", SHOP_APP)):
                job_id = f"after-{account}-{n}"
                sim.add_job(job_id, queue_s=0.1, run_s=0.5, account=app_id)
                later[job_id] = account
        _watch(workspace, later)
        _await_events(receiver, later)
        stats = sim.stats()["accounts"]
        assert stats[APP_ID]["tokens_issued"] == 2, stats[APP_ID]  # it fetched a new one
        assert stats[SHOP_APP]["tokens_issued"] == 1, stats[SHOP_APP]
        assert sim.current_token(SHOP_APP) == shop_token
        assert "40000" not in stats[SHOP_APP]["codes"], stats[SHOP_APP]["codes"]
        assert set(stats[SHOP_APP]["codes"]) == {"0"}, stats[SHOP_APP]["codes"]
    finally:
        assert daemon.stop() == 0
