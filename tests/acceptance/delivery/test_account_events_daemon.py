"""Two vendor accounts in the real daemon, one with credentials the vendor rejects (issue 22,
items 2 and 3): ``vendor.failing`` names that account, and only it; the other account's jobs
are still notified, each webhook naming its account; once the secret is fixed (SIGHUP) the
account's ``vendor.recovered`` and its job's event follow; an endpoint limited to that account
gets its events, operational ones included, and none of the other account's."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.models import WatchSpec
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import APP_ID, SECRET_KEY, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow

#: The second account the simulator serves, and the secret the daemon has for it at first.
MEDIA = SimAccount("media-app", "media-secret-0f3c", 10, "media")
WRONG = "not-the-media-secret"
VENDOR_EVENTS = ["vendor.failing", "vendor.recovered"]


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """The vendor stand-in with two accounts: the kit's (``APP_ID``) and media's."""
    config = SimConfig(app_id=APP_ID, secret_key=SECRET_KEY, qps=10, seed=7, accounts=(MEDIA,))
    sim = VendorSimulator(config)
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


def _by_type(received: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in received:
        out.setdefault(r.payload["type"], []).append(r)
    return out


def test_one_accounts_rejected_credentials_leave_the_other_notified(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    good = workspace.config.pop("chanjing")
    media = {"name": "media", **good, "app_id": MEDIA.app_id, "secret_key": WRONG}
    workspace.config["accounts"] = [{"name": "default", **good}, media]
    ops, analytics = workspace.config["endpoints"][:2]
    ops["events"] = ["*", *VENDOR_EVENTS]  # every account's job and vendor events
    analytics.update(events=["*", *VENDOR_EVENTS], accounts=["media"])  # media's only
    workspace.config["endpoints"] = [ops, analytics]
    workspace.write_config()
    sim = simulator.sim
    mine = sim.add_job("acctjob01", queue_s=0.0, run_s=0.5, outcome=20)
    theirs = sim.add_job("acctjob02", queue_s=0.0, run_s=0.5, outcome=30, account=MEDIA.app_id)
    daemon = workspace.start()
    daemon.wait_ready()
    with Store(workspace.state_path) as store:
        store.add_watches([WatchSpec(mine), WatchSpec(theirs, account="media")], "queue")

    def arrived(*types: str) -> Any:
        return lambda r: set(types) <= set(_by_type(r.accepted("/ops")))

    assert rec.wait_for_blocking(arrived("lip_sync.succeeded", "vendor.failing"), 30), daemon.output
    got = _by_type(rec.accepted("/ops"))
    (failing,) = got["vendor.failing"]  # media's, once; the default account never failed
    assert failing.verified
    assert failing.payload["data"]["account"] == "media"
    assert failing.payload["data"]["error"] == (
        "credentials rejected (check accounts[1] (media).app_id / accounts[1] (media).secret_key)"
    )
    assert WRONG not in failing.body.decode()
    (done,) = got["lip_sync.succeeded"]
    assert done.verified
    assert (done.payload["data"]["id"], done.payload["data"]["account"]) == (mine, "default")
    assert "lip_sync.failed" not in got  # media's job waits for its credentials

    media["secret_key"] = MEDIA.secret_key
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert rec.wait_for_blocking(arrived("vendor.recovered", "lip_sync.failed"), 30), daemon.output
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/analytics")) >= 3, 30)
    assert daemon.stop() == 0

    got = _by_type(rec.accepted("/ops"))
    assert sorted(got) == ["lip_sync.failed", "lip_sync.succeeded", *VENDOR_EVENTS]
    (recovered,) = got["vendor.recovered"]
    assert recovered.payload["data"]["account"] == "media"
    (late,) = got["lip_sync.failed"]
    assert (late.payload["data"]["id"], late.payload["data"]["account"]) == (theirs, "media")
    # The media-only endpoint: media's events, the same webhook-ids, none of default's.
    only = rec.accepted("/analytics")
    assert all(r.verified for r in only)
    assert {r.webhook_id for r in only} == {
        failing.webhook_id,
        recovered.webhook_id,
        late.webhook_id,
    }
    assert {r.payload["data"]["account"] for r in only} == {"media"}
    # The state names each event's account.
    stored = {e["type"]: e["account"] for e in workspace.cli_json("events", "list")}
    assert stored == {
        "lip_sync.succeeded": "default",
        "lip_sync.failed": "media",
        "vendor.failing": "media",
        "vendor.recovered": "media",
    }
