"""The daemon prunes history older than state.retention by itself (issue 9)."""

from __future__ import annotations

import time

import pytest

from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import Workspace

pytestmark = pytest.mark.slow
DAY = 86400.0


def test_old_history_is_pruned_and_recent_kept(workspace: Workspace) -> None:
    workspace.config["state"]["retention"] = "7d"
    workspace.write_config()
    for age, job_id in ((10 * DAY, "oldjob01"), (DAY, "newjob01")):
        with Store(workspace.state_path, clock=lambda age=age: time.time() - age) as store:
            store.add_watches([WatchSpec(job_id)], "queue")
            detail = JobDetail(job_id, 20, 100, "success", "", "", 0, 1_700_000_000)
            event = Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", store.now(), b"{}")
            store.record_terminal(detail, event, [])  # no endpoint: settled at once
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(
        lambda r: r.get("event") == "pruned history older than state.retention", timeout=20
    ), daemon.output
    line = next(r for r in daemon.records() if r.get("event", "").startswith("pruned history"))
    assert (line["events"], line["watches"]) == (1, 1)
    assert daemon.stop() == 0
    assert [w["job_id"] for w in workspace.cli_json("watch", "list")] == ["newjob01"]
    assert [e["job_id"] for e in workspace.cli_json("events", "list")] == ["newjob01"]


def test_retention_zero_keeps_everything(tmp_path: object) -> None:
    from notifier.config import StateConfig

    assert StateConfig().retention == 30 * DAY
    assert StateConfig(retention="0").retention == 0.0
