"""The real daemon: dead deliveries replayed, endpoints removed and added by a reload,
events whose routing found no endpoint, and a clean stop with deliveries in flight."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.kit import ReceiverServer, Simulator, Workspace, wait_until

pytestmark = pytest.mark.slow


def _event(name: str, **fields: Any) -> Any:
    return lambda r: r.get("event") == name and all(r.get(k) == v for k, v in fields.items())


def _delivery(workspace: Workspace, endpoint: str) -> dict[str, Any]:
    (row,) = [d for d in workspace.cli_json("deliveries", "list") if d["endpoint"] == endpoint]
    return row


def _reload(workspace: Workspace, daemon: Any) -> None:
    seen = sum(1 for r in daemon.records() if r.get("event") == "reloaded")
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(
        lambda _r: sum(1 for r in daemon.records() if r.get("event") == "reloaded") > seen,
        timeout=15,
    ), daemon.output


def test_dead_delivery_replayed_is_delivered(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    steps = len(workspace.config["delivery"]["retry_schedule"])
    rec.script("/ops", [500] * (steps + 1))
    job = simulator.sim.add_job("job-dead", queue_s=0.1, run_s=0.2)
    workspace.cli("watch", "add", job, "--endpoint", "ops")
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(_event("delivery dead", endpoint="ops"), timeout=30), daemon.output
    dead = _delivery(workspace, "ops")
    assert dead["state"] == "dead" and dead["attempts"] == steps + 1

    assert "replaying 1 dead" in workspace.cli("deliveries", "replay", "--dead").stdout
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 1, timeout=15), rec.summary()
    assert daemon.wait_for_log(_event("delivered", endpoint="ops"), timeout=10)
    assert _delivery(workspace, "ops")["state"] == "delivered"
    assert daemon.stop() == 0


def test_removed_endpoint_parks_its_deliveries_until_it_returns(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    workspace.config["delivery"]["retry_schedule"] = ["200ms", "1h"]
    workspace.write_config()
    rec.script("/ops", [500, 500])
    job = simulator.sim.add_job("job-removed", queue_s=0.1, run_s=0.2)
    workspace.cli("watch", "add", job, "--endpoint", "ops")
    daemon = workspace.start()
    daemon.wait_ready()
    # Both attempts were made (the second one's log line may be held back: one a second).
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) == 2, timeout=20), rec.summary()
    assert wait_until(lambda: _delivery(workspace, "ops")["attempts"] == 2, timeout=10)
    assert _delivery(workspace, "ops")["state"] == "pending"  # next try in an hour

    endpoints = workspace.config["endpoints"]
    workspace.config["endpoints"] = [ep for ep in endpoints if ep["name"] != "ops"]
    _reload(workspace, daemon)
    parked = _delivery(workspace, "ops")
    assert parked["state"] == "dead" and parked["last_error"] == "endpoint removed", parked
    assert daemon.wait_for_log(_event("deliveries parked: the endpoint is not configured"), 1)

    workspace.config["endpoints"] = endpoints
    _reload(workspace, daemon)
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 1, timeout=15), rec.summary()
    assert daemon.wait_for_log(_event("delivered", endpoint="ops"), timeout=10)
    assert _delivery(workspace, "ops")["state"] == "delivered"
    assert daemon.stop() == 0


def test_watch_naming_an_endpoint_not_loaded_yet_delivers_after_reload(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    daemon = workspace.start()
    daemon.wait_ready()
    # The operator adds an endpoint to the file but has not reloaded the daemon yet.
    workspace.config["endpoints"].append(
        {
            "name": "new1",
            "type": "webhook",
            "url": f"{receiver.url}/new1",
            "secret": "${OPS_SECRET}",
        }
    )
    workspace.write_config()
    job = simulator.sim.add_job("job-new1", queue_s=0.1, run_s=0.2)
    workspace.cli("watch", "add", job, "--endpoint", "new1")
    assert daemon.wait_for_log(_event("job finished", job_id=job), timeout=20), daemon.output
    assert daemon.wait_for_log(_event("deliveries parked: the endpoint is not configured"), 10)
    parked = _delivery(workspace, "new1")
    assert parked["state"] == "dead" and parked["last_error"] == "endpoint not configured"

    _reload(workspace, daemon)
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/new1")) == 1, timeout=15)
    assert rec.accepted("/new1")[0].payload["data"]["id"] == job
    assert daemon.wait_for_log(_event("delivered", endpoint="new1"), timeout=10)
    assert _delivery(workspace, "new1")["state"] == "delivered"
    assert not rec.all("/ops")  # the watch named new1 only
    assert daemon.stop() == 0


def test_replay_of_an_event_without_deliveries_routes_it_now(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    daemon = workspace.start()
    daemon.wait_ready()
    # analytics takes only lip_sync.succeeded: this failed job's event goes nowhere.
    job = simulator.sim.add_job("job-nowhere", queue_s=0.1, run_s=0.2, outcome=30)
    workspace.cli("watch", "add", job, "--endpoint", "analytics")
    assert daemon.wait_for_log(_event("job finished", job_id=job), timeout=20), daemon.output
    (event,) = workspace.cli_json("events", "list")
    assert workspace.cli_json("deliveries", "list") == []

    analytics = next(ep for ep in workspace.config["endpoints"] if ep["name"] == "analytics")
    analytics["events"] = ["lip_sync.succeeded", "lip_sync.failed"]
    _reload(workspace, daemon)
    out = workspace.cli("deliveries", "replay", event["event_id"]).stdout
    assert "replaying 1 delivery(ies) of 1 event(s)" in out
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/analytics")) == 1, timeout=15)
    assert rec.accepted("/analytics")[0].webhook_id == event["event_id"]
    assert _delivery(workspace, "analytics")["state"] in ("pending", "delivered")
    assert daemon.stop() == 0


def test_stop_with_deliveries_in_flight_logs_no_error(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    rec.set_delay("/ops", 2.0)  # answers within the stop grace
    # More deliveries than the lane takes at once: an attempt that ends frees a slot.
    workspace.config["delivery"]["concurrency"] = 2
    workspace.write_config()
    jobs = [simulator.sim.add_job(f"job-stop{i}", queue_s=0.1, run_s=0.2) for i in range(6)]
    workspace.cli("watch", "add", *jobs, "--endpoint", "ops")
    daemon = workspace.start()
    daemon.wait_ready()

    def all_finished(_r: dict[str, Any]) -> bool:
        return sum(1 for r in daemon.records() if r.get("event") == "job finished") == 6

    assert daemon.wait_for_log(all_finished, timeout=20), daemon.output
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) >= 2, timeout=20), rec.summary()
    assert daemon.stop(signal.SIGTERM) == 0
    records = daemon.records()
    stopping = next(i for i, r in enumerate(records) if r.get("event") == "stopping")
    after = records[stopping:]
    assert any(r.get("event") == "stopped" for r in after)
    problems = [
        r
        for r in after
        if r.get("unparsed") or r.get("level") in ("error", "critical") or "exception" in r
    ]
    assert problems == [], daemon.output
    # No attempt started after the stop began: the two in flight were the last.
    assert len(rec.all("/ops")) == 2, rec.summary()
    assert len(workspace.cli_json("deliveries", "list", "--state", "pending")) == 4
