"""A watch given up after give_up_after sends `lip_sync.expired` (issue 9)."""

from __future__ import annotations

import pytest

from notifier.delivery.senders import build_slack_message
from notifier.tools.receiver import Receiver
from tests.kit import SLACK_PATH, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def test_a_given_up_job_is_reported_as_expired(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    workspace.config["polling"]["give_up_after"] = "2s"
    workspace.write_config()
    job = simulator.sim.add_job("forever01", queue_s=0.0, run_s=1e6, outcome=20)
    workspace.cli("watch", "add", job, "--label", "customer=acme")
    daemon = workspace.start()
    daemon.wait_ready()

    def expired(r: Receiver) -> bool:
        return any(x.payload["type"] == "lip_sync.expired" for x in r.accepted("/ops"))

    assert receiver.receiver.wait_for_blocking(expired, timeout=30), daemon.output
    (sent,) = receiver.receiver.accepted("/ops")
    assert sent.payload["data"]["id"] == job
    assert sent.payload["data"]["status"] == 10  # what the last look saw
    assert sent.payload["data"]["labels"] == {"customer": "acme"}
    (watch,) = workspace.cli_json("watch", "list")
    assert watch["state"] == "expired"
    (event,) = workspace.cli_json("events", "list")
    assert (event["event_id"], event["type"]) == (sent.webhook_id, "lip_sync.expired")
    assert daemon.stop() == 0
    # Endpoints that did not ask for it (analytics: succeeded only; team: failed only) got none.
    assert receiver.receiver.all("/analytics") == []
    assert receiver.receiver.all(SLACK_PATH) == []


def test_slack_says_given_up() -> None:
    message = build_slack_message(
        {"type": "lip_sync.expired", "data": {"id": "j1", "status": 10, "progress": 40}}
    )
    assert "given up" in message["blocks"][0]["text"]["text"]
    assert "Progress" in str(message["blocks"])
