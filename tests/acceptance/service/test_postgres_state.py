"""The real daemon on a PostgreSQL state (``state.url``): the simulator's job is delivered,
and the CLI reads and writes the same database (issue 10)."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest

from notifier.tools.receiver import Receiver
from tests.kit import PgServer, ReceiverServer, Simulator, Workspace, free_port, wait_until

pytestmark = pytest.mark.slow

#: The throwaway server trusts every local login: any password opens it, and none may leak.
PASSWORD = "pg-pass-7d1e0c5b9a"
PAUSED = "state database cannot be written; polling and delivery are paused until it can"


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
    checked = workspace.cli("check")  # names the database, without connecting to it
    assert f"state: {pg_url} (PostgreSQL; not contacted by check" in checked.stdout

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
    assert PASSWORD not in daemon.output

    # The other commands on the same database, the daemon stopped.
    events = workspace.cli_json("events", "list")
    assert {e["job_id"] for e in events} == {first, second}
    event_id = next(e["event_id"] for e in events if e["job_id"] == first)
    shown = json.loads(workspace.cli("deliveries", "show", event_id, "--json").stdout)
    assert [len(d["history"]) for d in shown["deliveries"]] == [1, 1]
    workspace.cli("deliveries", "replay", event_id, "--endpoint", "ops")
    assert len(workspace.cli_json("deliveries", "list", "--state", "pending")) == 1
    workspace.cli("watch", "rm", second)
    assert [w["job_id"] for w in workspace.cli_json("watch", "list")] == [first]
    # The state is named without its password (and not masked whole as a secret).
    starting = next(r for r in daemon.records() if r.get("event") == "starting")
    assert starting["state"] == pg_url


def test_the_daemon_pauses_while_the_database_is_unreachable_and_resumes(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_server: PgServer,
    pg_url: str,
) -> None:
    """The server drops the daemon's connection and refuses new ones for a while (a restart,
    a failover): the daemon names the outage, and once connections are allowed again its
    next probe opens a new one and it carries on by itself."""
    workspace.config["state"] = {"url": pg_url}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    # Named in the log (a URL without password is no secret to mask).
    starting = next(r for r in daemon.records() if r.get("event") == "starting")
    assert starting["state"] == pg_url
    name = pg_url.rpartition("/")[2]
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchone()
        assert dropped is not None and dropped[0] >= 1

        def logged(event: str) -> bool:
            return daemon.wait_for_log(lambda r: r.get("event") == event, timeout=20)

        assert logged(PAUSED), daemon.output
        outage = next(r for r in daemon.records() if r.get("event") == PAUSED)
        assert outage["cause"] == "the database server is unreachable"
        assert outage["file"] == pg_url
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert logged("state database writable again; polling and delivery resumed"), daemon.output

    job = simulator.sim.add_job("after-outage", queue_s=0.1, run_s=0.3, outcome=20)
    workspace.cli("watch", "add", job)

    def delivered(r: Receiver) -> bool:
        return job in {p.payload["data"]["id"] for p in r.accepted("/ops")}

    assert receiver.receiver.wait_for_blocking(delivered, timeout=60), receiver.receiver.summary()
    assert daemon.stop() == 0


def test_a_statement_that_stalls_is_cut_short_and_treated_as_an_outage(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_server: PgServer,
    pg_url: str,
) -> None:
    """Issue 19, item 9: a write that the server does not finish (here a trigger sleeping a
    minute: a real server stalling, no lock involved) used to hold the daemon's loop until
    it ended; now statement_timeout cuts it short, the daemon pauses as for an outage (and
    /healthz answers meanwhile), and it delivers once statements finish again."""
    port = free_port()
    workspace.config["state"] = {"url": pg_url}
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    job = simulator.sim.add_job("stalls", queue_s=3.0, run_s=3.0, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            # Two branches: PL/pgSQL may evaluate both sides of an OR, and write_probe rows
            # have no job_id.
            "IF TG_TABLE_NAME = 'write_probe' THEN PERFORM pg_sleep(60); "
            "ELSIF NEW.job_id = 'stalls' THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
        )
        # The daemon's write probe stalls as well: the server, not one row, is slow.
        admin.execute(
            "CREATE TRIGGER stall BEFORE INSERT OR UPDATE ON write_probe "
            "FOR EACH ROW EXECUTE FUNCTION stall()"
        )
        admin.execute(
            # Only the daemon updates a watch it polls: the CLI above wrote it already.
            "CREATE TRIGGER stall BEFORE UPDATE ON watches FOR EACH ROW EXECUTE FUNCTION stall()"
        )

        def slow(r: dict[str, object]) -> bool:
            return r.get("event") == PAUSED and "statement timeout" in str(r.get("cause"))

        assert daemon.wait_for_log(slow, timeout=20), daemon.output
        # Health answers within the bound (its own probe stalls 3 s), not after the minute.
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 503 and "statement timeout" in health.text
        admin.execute("DROP TRIGGER stall ON watches")
        admin.execute("DROP TRIGGER stall ON write_probe")

    def delivered(r: Receiver) -> bool:
        return job in {p.payload["data"]["id"] for p in r.accepted("/ops")}

    assert receiver.receiver.wait_for_blocking(delivered, timeout=60), receiver.receiver.summary()
    assert daemon.stop() == 0


def test_a_commit_waiting_for_a_synchronous_standby_is_cut_short_as_an_outage(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_server: PgServer,
    pg_url: str,
) -> None:
    """Issue 19, item 9: a COMMIT waiting for a synchronous standby that does not answer is
    not covered by statement_timeout (the server's wait ignores it); the daemon cancels it
    itself, pauses as for an outage (committed here, not confirmed), and goes on once the
    standby is no longer required. The server's standby setting is server-wide, but only
    this database's sessions wait: the test server's default is synchronous_commit = off."""
    port = free_port()
    workspace.config["state"] = {"url": pg_url}
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    job = simulator.sim.add_job("syncwait", queue_s=2.0, run_s=2.0, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'ghost_standby'")
        admin.execute("SELECT pg_reload_conf()")
        try:

            def unreplicated(r: dict[str, object]) -> bool:
                return r.get("event") == PAUSED and "synchronous standby" in str(r.get("cause"))

            assert daemon.wait_for_log(unreplicated, timeout=30), daemon.output
            # Each write attempt holds the loop up to the bound (4 s), spaced out: it answers.
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert health.status_code == 503 and "synchronous standby" in health.text
        finally:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")

    def delivered(r: Receiver) -> bool:
        return job in {p.payload["data"]["id"] for p in r.accepted("/ops")}

    assert receiver.receiver.wait_for_blocking(delivered, timeout=60), receiver.receiver.summary()
    assert daemon.stop() == 0
