"""Delivery history (`deliveries show`), replay of one endpoint, rejected queue rows and
`watch add --reopen`: the real daemon and CLI on a real state file, real HTTP callbacks."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from typing import Any

import pytest

from notifier.intake.queue import take_queue
from notifier.models import Event
from notifier.store import Store
from tests.kit import ReceiverServer, Simulator, Workspace, wait_until

pytestmark = pytest.mark.slow


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return ws.cli(*args, check=False)


def show(ws: Workspace, event_id: str) -> dict[str, Any]:
    result = cli(ws, "deliveries", "show", event_id, "--json")
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def by_endpoint(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["endpoint"]: d for d in event["deliveries"]}


def test_history_is_kept_across_a_replay_of_one_endpoint(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    simulator.sim.add_job("job-h", queue_s=0.1, run_s=0.2, outcome=20)
    rec = receiver.receiver
    rec.script("/ops", [500])  # the first attempt fails, the retry gets through
    daemon = workspace.start()
    daemon.wait_ready()
    assert cli(workspace, "watch", "add", "job-h").returncode == 0
    assert rec.wait_for_blocking(
        lambda r: bool(r.accepted("/ops")) and bool(r.accepted("/analytics")), 30
    )

    def delivered() -> bool:
        with Store(workspace.state_path) as store:
            rows = store.list_deliveries()
        return len(rows) == 2 and all(d["state"] == "delivered" for d in rows)

    assert wait_until(delivered, 15)
    (event_row,) = json.loads(cli(workspace, "events", "list", "--json").stdout)
    event_id = event_row["event_id"]
    first = by_endpoint(show(workspace, event_id))
    assert [(a["status"], a["outcome"]) for a in first["ops"]["history"]] == [
        (500, "failed"),
        (200, "delivered"),
    ]
    assert all(a["duration"] >= 0 for a in first["ops"]["history"])
    assert first["ops"]["history"][0]["error"]
    assert [a["outcome"] for a in first["analytics"]["history"]] == ["delivered"]

    replay = cli(workspace, "deliveries", "replay", event_id, "--endpoint", "ops")
    assert replay.returncode == 0, replay.stderr
    assert "replaying 1 delivery(ies) of 1 event(s)" in replay.stdout
    assert rec.wait_for_blocking(lambda r: len(r.accepted("/ops")) == 2, 30)

    def replayed() -> bool:
        return by_endpoint(show(workspace, event_id))["ops"]["state"] == "delivered" and (
            len(by_endpoint(show(workspace, event_id))["ops"]["history"]) == 3
        )

    assert wait_until(replayed, 15)
    after = by_endpoint(show(workspace, event_id))
    assert [a["generation"] for a in after["ops"]["history"]] == [0, 0, 1]
    assert len(after["analytics"]["history"]) == 1  # not replayed
    assert len(rec.accepted("/analytics")) == 1

    table = cli(workspace, "deliveries", "show", event_id).stdout
    assert f"event {event_id}  lip_sync.succeeded  job job-h" in table
    assert "ops: delivered after 3 attempt(s) in all, over 1 replay(s) (1 since the last)" in table
    assert "STARTED_AT" in table and "500" in table
    missing = cli(workspace, "deliveries", "replay", event_id, "--endpoint", "team")
    assert missing.returncode == 1 and "no deliveries to team" in missing.stderr
    assert daemon.stop(signal.SIGTERM) == 0


def test_rejected_rows_are_listed_and_cleared(workspace: Workspace) -> None:
    Store(workspace.state_path).close()
    with sqlite3.connect(workspace.state_path) as db:
        db.execute("INSERT INTO watch_queue (job_id) VALUES ('bad id!')")
        db.execute("INSERT INTO watch_queue (job_id, labels) VALUES ('ok-1', 'not json')")
    with Store(workspace.state_path) as store:
        result = take_queue(store, ["ops"])
    assert len(result.rejected) == 2
    rows = json.loads(cli(workspace, "watch", "rejected", "--json").stdout)
    assert [r["job_id"] for r in rows] == ["bad id!", "ok-1"]
    assert all(r["rejected"] for r in rows)
    table = cli(workspace, "watch", "rejected").stdout
    assert "REJECTED" in table.splitlines()[0] and "bad id!" in table
    cleared = cli(workspace, "watch", "rejected", "--clear")
    assert "cleared 2 rejected row(s)" in cleared.stderr
    assert json.loads(cli(workspace, "watch", "rejected", "--json").stdout) == []


def test_reopen_watches_an_expired_id_again(workspace: Workspace) -> None:
    with Store(workspace.state_path, clock=lambda: 1_700_000_000.0) as store:
        from notifier.models import WatchSpec

        store.add_watches([WatchSpec("job-x", {"k": "v"}, None)], "queue")
    with Store(workspace.state_path, clock=lambda: 1_700_100_000.0) as store:
        given_up = Event("evt_x", "job-x", "lip_sync.expired", 1_700_100_000.0, b"{}")
        assert store.expire_watch("job-x", given_up, [], cutoff=1_700_100_000.0 - 3600)
    plain = cli(workspace, "watch", "add", "job-x")
    assert "job-x: not watched: expired since" in plain.stdout
    assert "--reopen" in plain.stdout
    reopened = cli(workspace, "watch", "add", "--reopen", "job-x")
    assert reopened.returncode == 0
    assert "job-x: expired, watched again" in reopened.stdout
    (row,) = json.loads(cli(workspace, "watch", "list", "--json").stdout)
    assert row["state"] == "active" and row["finished_at"] is None
    assert row["labels"] == {"k": "v"}
