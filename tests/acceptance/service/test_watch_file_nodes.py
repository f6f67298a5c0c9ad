"""Issue 19, item 6: two real daemons on one PostgreSQL, each with its own watch file. Each
file is its node's listing: node B with an older copy of the file (10 of node A's 20 ids)
must not delete the other 10 watches (before, it did, and they were never reported); an id
is removed once no node's file lists it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.kit import DaemonProcess, ReceiverServer, Simulator, Workspace, base_config

pytestmark = pytest.mark.slow

LOADED = "watch file loaded"


def _loaded(daemon: DaemonProcess, count: int) -> list[dict[str, Any]]:
    """The first ``count`` "watch file loaded" lines, once there are that many."""
    assert daemon.wait_for_log(
        lambda _r: len([r for r in daemon.records() if r.get("event") == LOADED]) >= count, 30
    ), daemon.output
    return [r for r in daemon.records() if r.get("event") == LOADED][:count]


def test_a_node_with_an_older_watch_file_does_not_remove_the_other_nodes_watches(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    # Long enough that B starts (and syncs) before they finish; the removals below are
    # checked on the log lines whatever the machine's speed.
    # (job 15, removed below, never finishes in the test's time.)
    jobs = [
        simulator.sim.add_job(f"filejob{i:02d}", queue_s=0, run_s=600 if i == 15 else 6)
        for i in range(20)
    ]
    workspace.config["state"] = {"url": pg_url, "node": "node-a", "lease": "3s"}
    workspace.write_config()
    workspace.write_watch(jobs)
    a = workspace.start()
    a.wait_ready()
    assert _loaded(a, 1)[0]["added"] == 20

    b_dir = workspace.tmp_path / "b"
    b_dir.mkdir()
    b_config = base_config(b_dir, simulator.url, receiver.url)
    b_config["state"] = {"url": pg_url, "node": "node-b", "lease": "3s"}
    (b_dir / "watch.yaml").write_text(yaml.safe_dump(jobs[:10]))  # an older copy
    (b_dir / "config.yaml").write_text(yaml.safe_dump(b_config, sort_keys=False))
    b = DaemonProcess.start(b_dir / "config.yaml", workspace.env)
    workspace.processes.append(b)
    b.wait_ready()
    (first,) = _loaded(b, 1)
    assert (first["added"], first["removed"]) == (0, 0), first
    active = {w["job_id"] for w in workspace.cli_json("watch", "list")}
    assert active == set(jobs)

    # A drops one id only it lists (removed at once, as on one node) and one B lists too
    # (kept: B's file still has it).
    only_a, both = jobs[15], jobs[5]
    workspace.write_watch([j for j in jobs if j not in (only_a, both)])
    assert _loaded(a, 2)[1]["removed"] == 1
    remaining = {w["job_id"] for w in workspace.cli_json("watch", "list")}
    assert remaining == set(jobs) - {only_a}

    expected = set(jobs) - {only_a}
    assert receiver.receiver.wait_for_blocking(
        lambda rec: {r.payload["data"]["id"] for r in rec.accepted("/ops")} >= expected, 60
    ), receiver.receiver.summary()
    reported = [r.payload["data"]["id"] for r in receiver.receiver.accepted("/ops")]
    assert sorted(set(reported)) == sorted(expected)
    assert b.stop() == 0
    assert a.stop() == 0
