"""The real daemon on a PostgreSQL state (``state.url``): the simulator's job is delivered,
and the CLI reads and writes the same database (issue 10)."""

from __future__ import annotations

import psycopg
import pytest

from notifier.tools.receiver import Receiver
from tests.conftest import ReceiverServer, Simulator, Workspace
from tests.fault_fs import wait_until

pytestmark = pytest.mark.slow

#: The throwaway server trusts every local login: any password opens it, and none may leak.
PASSWORD = "pg-pass-7d1e0c5b9a"


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


def test_daemon_and_cli_share_a_postgres_state(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    workspace.config["state"] = {"url": "${STATE_URL}"}
    workspace.env["STATE_URL"] = with_password(pg_url)
    workspace.write_config()

    # No tables yet: read-only commands say so and create nothing.
    empty = workspace.cli("watch", "list", "--json")
    assert empty.stdout.strip() == "[]"
    assert f"{pg_url}: no state tables in this database" in empty.stderr
    checked = workspace.cli("check")
    assert f"state: {pg_url} (no tables yet" in checked.stdout

    first = simulator.sim.add_job("pgjob1", queue_s=0.2, run_s=0.4, outcome=20)
    second = simulator.sim.add_job("pgjob2", queue_s=0.2, run_s=0.4, outcome=20)
    workspace.cli("watch", "add", first, "--label", "via=cli")
    daemon = workspace.start()
    daemon.wait_ready()
    # Another program queues a job with a plain INSERT, as it would into SQLite.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO watch_queue (job_id) VALUES (%s)", (second,))

    rec = receiver.receiver

    def delivered(r: Receiver) -> bool:
        return {p.payload["data"]["id"] for p in r.accepted("/ops")} == {first, second}

    assert rec.wait_for_blocking(delivered, timeout=60), rec.summary()
    watches = {w["job_id"]: w for w in workspace.cli_json("watch", "list")}
    assert watches[first]["state"] == watches[second]["state"] == "succeeded"
    assert watches[first]["labels"] == {"via": "cli"} and watches[second]["source"] == "queue"

    def settled() -> bool:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT state FROM deliveries").fetchall()
        return len(rows) == 4 and {row[0] for row in rows} == {"delivered"}

    # Two jobs, each to ops and analytics (it takes successes); the result is written just
    # after the receiver's answer.
    assert wait_until(settled, timeout=30)
    rows = workspace.cli_json("deliveries", "list")
    assert {(d["job_id"], d["endpoint"], d["state"]) for d in rows} == {
        (job, endpoint, "delivered") for job in (first, second) for endpoint in ("ops", "analytics")
    }
    listed = workspace.cli("deliveries", "list").stdout
    assert first in listed and second in listed
    assert daemon.stop() == 0
    ready = next(r for r in daemon.records() if r.get("event") == "ready")
    assert PASSWORD not in daemon.output and PASSWORD not in str(ready)
    assert pg_url in daemon.output  # the state is named, without the password
