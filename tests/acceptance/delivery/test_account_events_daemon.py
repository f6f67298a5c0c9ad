"""Two vendor accounts in the real daemon, one with credentials the vendor rejects (issue 22,
items 2 and 3): ``vendor.failing`` names that account, and only it; the other account's jobs
are still notified, each webhook naming its account; an endpoint limited to the failing
account gets its operational event and none of the other account's events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from notifier.service.http_server import ServerThread
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import (
    APP_ID,
    SECRET_KEY,
    ReceiverServer,
    Simulator,
    Workspace,
)

pytestmark = pytest.mark.slow

#: The second account the simulator serves, and the secret the daemon (wrongly) has for it.
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


def _types(received: list[Any]) -> list[str]:
    return [r.payload["type"] for r in received]


def test_one_accounts_rejected_credentials_leave_the_other_notified(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    good = workspace.config.pop("chanjing")
    workspace.config["accounts"] = [
        {"name": "default", **good},
        {"name": "media", **good, "app_id": MEDIA.app_id, "secret_key": WRONG},
    ]
    ops, analytics = workspace.config["endpoints"][:2]
    ops["events"] = ["*", *VENDOR_EVENTS]  # every account's job and vendor events
    analytics.update(events=["*", *VENDOR_EVENTS], accounts=["media"])  # media's only
    workspace.config["endpoints"] = [ops, analytics]
    workspace.write_config()
    job = simulator.sim.add_job("acctjob01", queue_s=0.0, run_s=0.5, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()

    def arrived(r: Any) -> bool:
        seen = _types(r.accepted("/ops"))
        return "lip_sync.succeeded" in seen and "vendor.failing" in seen

    assert rec.wait_for_blocking(arrived, 30), daemon.output
    assert rec.wait_for_blocking(lambda r: r.accepted("/analytics"), 30), daemon.output
    assert daemon.stop() == 0

    sent = {t: [r for r in rec.accepted("/ops") if r.payload["type"] == t] for t in VENDOR_EVENTS}
    (failing,) = sent["vendor.failing"]  # media's, once; default never failed
    assert sent["vendor.recovered"] == []
    assert failing.verified
    data = failing.payload["data"]
    assert data["account"] == "media"
    assert data["error"] == (
        "credentials rejected (check accounts[1] (media).app_id / accounts[1] (media).secret_key)"
    )
    assert WRONG not in failing.body.decode()
    (done,) = [r for r in rec.accepted("/ops") if r.payload["type"] == "lip_sync.succeeded"]
    assert done.verified
    assert (done.payload["data"]["id"], done.payload["data"]["account"]) == (job, "default")
    # The media-only endpoint: media's vendor event, nothing of the default account's.
    (only,) = rec.accepted("/analytics")
    assert only.verified and only.webhook_id == failing.webhook_id
    assert only.payload["data"]["account"] == "media"
    # The state names each event's account.
    stored = {e["type"]: e["account"] for e in workspace.cli_json("events", "list")}
    assert stored == {"lip_sync.succeeded": "default", "vendor.failing": "media"}
