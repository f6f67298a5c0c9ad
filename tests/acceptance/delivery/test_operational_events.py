"""Operational events with the real daemon: a failing endpoint is reported to another one
that asked for it, signed like job events, and never to itself (issue 9)."""

from __future__ import annotations

import signal
import socket
from typing import Any

import httpx
import pytest

from tests.kit import ReceiverServer, Simulator, Workspace, wait_until

pytestmark = pytest.mark.slow

OPS_TYPES = {"endpoint.failing", "endpoint.recovered", "delivery.dead"}


def _metrics_port(workspace: Workspace) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    return f"http://127.0.0.1:{port}/metrics"


def _scrape(url: str) -> str:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return ""


def _types(received: list[Any]) -> list[str]:
    return [r.payload["type"] for r in received]


def test_failing_dead_and_recovered_reach_the_watcher_only(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    ops, watcher = workspace.config["endpoints"][:2]
    watcher.update(name="watcher", events=sorted(OPS_TYPES))
    ops["events"] = ["lip_sync.succeeded", *sorted(OPS_TYPES)]  # asks, but is never told
    workspace.config["endpoints"] = [ops, watcher]
    workspace.config["delivery"]["retry_schedule"] = ["100ms", "100ms"]  # 3 attempts
    workspace.config["alerts"] = {"endpoint_failing_after": 2, "endpoint_failing_for": 0}
    metrics = _metrics_port(workspace)
    workspace.write_config()
    rec.script("/ops", [503, 503, 503])
    first = simulator.sim.add_job("opsjob01", queue_s=0.0, run_s=0.0, outcome=20)
    workspace.cli("watch", "add", first)
    daemon = workspace.start()
    daemon.wait_ready()

    def got(*types: str) -> Any:
        return lambda r: set(types) <= set(_types(r.accepted("/analytics")))

    assert rec.wait_for_blocking(got("endpoint.failing", "delivery.dead"), 30), daemon.output
    scraped = _scrape(metrics)
    assert 'chanjing_endpoint_failing{endpoint="ops"} 1.0' in scraped, scraped
    assert 'chanjing_endpoint_failing{endpoint="watcher"} 0.0' in scraped
    rec.script("/ops", [])  # the endpoint is fixed
    second = simulator.sim.add_job("opsjob02", queue_s=0.0, run_s=0.0, outcome=20)
    workspace.cli("watch", "add", second)
    assert rec.wait_for_blocking(got("endpoint.recovered"), 30), daemon.output
    assert 'chanjing_endpoint_failing{endpoint="ops"} 0.0' in _scrape(metrics)
    assert daemon.stop() == 0

    sent = rec.accepted("/analytics")
    assert _types(sent) == ["endpoint.failing", "delivery.dead", "endpoint.recovered"]
    assert all(r.verified for r in sent)
    failing, dead, recovered = (r.payload["data"] for r in sent)
    assert failing["endpoint"] == "ops"
    assert failing["consecutive_failures"] == 2
    assert failing["last_error"] == "HTTP 503"
    assert failing["since"].endswith("Z")
    job_event = next(r for r in rec.all("/ops") if r.payload["data"].get("id") == first)
    assert dead["event_id"] == job_event.webhook_id
    assert dead["job_id"] == first
    assert dead["event_type"] == "lip_sync.succeeded"
    assert (dead["endpoint"], dead["attempts"], dead["last_error"]) == ("ops", 3, "HTTP 503")
    assert recovered["endpoint"] == "ops"
    # ops subscribed to the operational types but is never told about itself.
    assert not OPS_TYPES & set(_types(rec.all("/ops")))
    assert {r.payload["data"]["id"] for r in rec.accepted("/ops")} == {second}
    # Stored like other events, under a key that is no job id.
    stored = {e["type"]: e for e in workspace.cli_json("events", "list")}
    assert stored["endpoint.failing"]["job_id"].startswith("ops:")


def test_operational_events_are_not_in_the_default(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    """An endpoint with the default ``events`` gets job events only."""
    rec = receiver.receiver
    ops, analytics = workspace.config["endpoints"][:2]
    analytics.pop("events")  # the default
    workspace.config["endpoints"] = [ops, analytics]
    workspace.config["delivery"]["retry_schedule"] = ["100ms"]
    workspace.config["alerts"] = {"endpoint_failing_after": 1}
    workspace.write_config()
    rec.script("/ops", [503, 503])
    job = simulator.sim.add_job("opsjob03", queue_s=0.0, run_s=0.0, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()

    def dead_logged(record: dict[str, Any]) -> bool:
        return record.get("event") == "operational event" and record.get("type") == "delivery.dead"

    assert daemon.wait_for_log(dead_logged, 30), daemon.output
    assert daemon.stop() == 0
    assert _types(rec.accepted("/analytics")) == ["lip_sync.succeeded"]
    assert {e["type"] for e in workspace.cli_json("events", "list")} == {"lip_sync.succeeded"}


def test_rejected_credentials_are_reported_as_vendor_failing_until_fixed(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    ops, watcher = workspace.config["endpoints"][:2]
    watcher.update(name="watcher", events=["vendor.failing", "vendor.recovered"])
    workspace.config["endpoints"] = [ops, watcher]
    workspace.config["chanjing"]["secret_key"] = "not-the-right-secret"
    metrics = _metrics_port(workspace)
    workspace.write_config()
    job = simulator.sim.add_job("opsjob04", queue_s=0.0, run_s=0.0, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()

    def got(event_type: str) -> Any:
        return lambda r: event_type in _types(r.accepted("/analytics"))

    assert rec.wait_for_blocking(got("vendor.failing"), 30), daemon.output
    assert wait_until(
        lambda: 'chanjing_vendor_failing{account="default"} 1.0' in _scrape(metrics), timeout=20
    )
    workspace.config["chanjing"]["secret_key"] = "${TEST_SECRET_KEY}"
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert rec.wait_for_blocking(got("vendor.recovered"), 30), daemon.output
    assert wait_until(
        lambda: 'chanjing_vendor_failing{account="default"} 0.0' in _scrape(metrics), timeout=20
    )
    assert daemon.stop() == 0
    failing, recovered = (r for r in rec.accepted("/analytics"))
    assert failing.verified and recovered.verified
    assert "credentials rejected" in failing.payload["data"]["error"]
    assert "not-the-right-secret" not in failing.body.decode()
    assert not {"vendor.failing", "vendor.recovered"} & set(_types(rec.all("/ops")))
