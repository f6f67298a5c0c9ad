"""Two vendor accounts in one daemon process (issue 22): each account's lane polls only its
own watches, with its own token and budget. Were a lane to poll the other account's watch,
the simulator (which keeps each account's jobs apart) would answer 40000 and the watch would
end rejected instead of with its event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.models import WatchSpec
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.simulator import SimAccount, SimConfig, VendorSimulator
from tests.kit import (
    APP_ID,
    SECRET_KEY,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
)
from tests.kit.kind_jobs import job_events

pytestmark = pytest.mark.slow

SHOP_APP, SHOP_SECRET = "shop-app", "sk-shop-5a1e7c9d"


@pytest.fixture(name="two_accounts")
def two_accounts_fixture() -> Iterator[Simulator]:
    shop = SimAccount(SHOP_APP, SHOP_SECRET, qps=5)
    sim = VendorSimulator(
        SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=7, accounts=(shop,))
    )
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


def test_each_lane_polls_its_own_accounts_watches(
    tmp_path: Path, two_accounts: Simulator, receiver: ReceiverServer
) -> None:
    config = base_config(tmp_path, two_accounts.url, receiver.url)
    default = config.pop("chanjing")
    config["accounts"] = [
        {"name": "default", **default},
        {**default, "name": "shop", "app_id": SHOP_APP, "secret_key": SHOP_SECRET, "qps": 5},
    ]
    workspace = Workspace(tmp_path, config, daemon_env(receiver.url))
    workspace.write_config()
    workspace.write_watch([])
    sim = two_accounts.sim
    jobs: dict[str, str] = {}  # job id -> account
    for account, app_id in (("default", None), ("shop", SHOP_APP)):
        for outcome in ("succeeded", "failed", "succeeded"):
            job_id = sim.add_job(queue_s=0.2, run_s=1.0, outcome=outcome, account=app_id)
            jobs[job_id] = account
    daemon = workspace.start()
    try:
        daemon.wait_ready()
        store = Store(workspace.state_path)
        try:
            store.add_watches([WatchSpec(j, account=a) for j, a in jobs.items()], "queue")
        finally:
            store.close()
        rec = receiver.receiver
        assert rec.wait_for_blocking(
            lambda r: {job_id for job_id, _type in job_events(r)} >= set(jobs), 60
        ), rec.summary()
        got = job_events(rec)
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
