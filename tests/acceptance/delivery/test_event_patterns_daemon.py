"""The daemon routes with an endpoint's ``events`` patterns, at start and after a reload
(issue 21, item 4): ``*.succeeded`` and ``*.failed`` take lip-sync's outcomes, ``video.*``
takes none of them, the default takes every job event."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.kit import SLACK_PATH, ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def _routed(workspace: Workspace, job_id: str) -> set[str]:
    """The endpoints the job's event was routed to (written with the event, at once)."""
    rows: list[dict[str, Any]] = workspace.cli_json("deliveries", "list", "--job", job_id)
    return {row["endpoint"] for row in rows}


def test_patterns_route_at_start_and_after_a_reload(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    ops, analytics, team = workspace.config["endpoints"]
    assert "events" not in ops  # the default: every job event
    analytics["events"] = ["*.succeeded"]
    team["events"] = ["*.failed"]
    workspace.write_config()
    done = simulator.sim.add_job("patterns01", queue_s=0.0, run_s=0.0, outcome=20)
    broken = simulator.sim.add_job("patterns02", queue_s=0.0, run_s=0.0, outcome=30)
    workspace.cli("watch", "add", done, broken)
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver

    def ops_got(*jobs: str) -> Any:
        return lambda r: {x.payload["data"]["id"] for x in r.accepted("/ops")} >= set(jobs)

    assert rec.wait_for_blocking(ops_got(done, broken), timeout=30), daemon.output
    assert _routed(workspace, done) == {"ops", "analytics"}
    assert _routed(workspace, broken) == {"ops", "team"}
    assert rec.wait_for_blocking(lambda r: bool(r.accepted(SLACK_PATH)), timeout=30)
    (slack,) = rec.accepted(SLACK_PATH)
    assert slack.payload["blocks"][0]["text"]["text"] == "❌ Lip-sync job failed"

    # A reload that points analytics at video jobs only: the next lip-sync success skips it.
    analytics["events"] = ["video.*"]
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=20)
    later = simulator.sim.add_job("patterns03", queue_s=0.0, run_s=0.0, outcome=20)
    workspace.cli("watch", "add", later)
    assert rec.wait_for_blocking(ops_got(later), timeout=30), daemon.output
    assert _routed(workspace, later) == {"ops"}
    assert daemon.stop() == 0
    assert {x.payload["data"]["id"] for x in rec.accepted("/analytics")} == {done}
