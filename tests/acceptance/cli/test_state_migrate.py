"""``state migrate --from FILE``: a SQLite state moved into PostgreSQL by the real CLI, then
run by a real daemon on ``state.url`` against the simulator and the receiver; and the cases it
refuses (issue 10)."""

from __future__ import annotations

import copy
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from notifier.delivery.transition import build_event
from notifier.intake.queue import take_queue
from notifier.models import JobDetail, WatchSpec
from notifier.service.instance_lock import AlreadyRunning, InstanceLock
from notifier.store import Store
from notifier.store.transfer import TABLES
from notifier.tools.receiver import Receiver
from tests.kit import SECRET_KEY, ReceiverServer, Simulator, Workspace, fail_as_before, wait_until

pytestmark = pytest.mark.slow

MIGRATE = ("state", "migrate", "--from")


def other_side(workspace: Workspace, name: str, state: dict[str, str]) -> Workspace:
    """The same config with another ``state``, in a directory of its own."""
    (workspace.tmp_path / name).mkdir()
    config = copy.deepcopy(workspace.config)
    config["state"] = state
    side = Workspace(workspace.tmp_path / name, config, workspace.env)
    side.write_config()
    return side


def detail(job_id: str, status: int) -> JobDetail:
    return JobDetail(job_id, status, 100, "done", "https://v/1.mp4", "", 12, 1_764_000_000)


def vendor_token(simulator: Simulator) -> tuple[str, float]:
    """A real token of the simulator, as the SQLite daemon would have cached it."""
    answer = httpx.post(
        f"{simulator.url}/open/v1/access_token",
        json={"app_id": "test-app", "secret_key": SECRET_KEY},
    ).json()
    return answer["data"]["access_token"], float(answer["data"]["expire_in"])


def build_source(path: Path, simulator: Simulator) -> dict[str, str]:
    """A state with every kind of row; the event id of each finished job."""
    sim = simulator.sim
    active = sim.add_job("mig-active", queue_s=0.2, run_s=0.4, outcome=20)
    queued = sim.add_job("mig-queued", queue_s=0.2, run_s=0.4, outcome=20)
    events: dict[str, str] = {}
    with Store(path) as store:
        store.add_watches(
            [WatchSpec(active, {"via": "sqlite"})]
            + [WatchSpec(j) for j in ("done-ok", "done-late", "done-bad", "gone", "old")],
            "cli",
        )
        store.enqueue([WatchSpec("bad id!")])
        take_queue(store, {"ops", "analytics", "team"})  # rejected, kept with its reason
        store.enqueue([WatchSpec(queued)])  # pending: the daemon on PostgreSQL takes it
        now = store.now()
        for job, status, endpoints in (
            ("done-ok", 20, ["ops", "analytics"]),
            ("done-late", 20, ["ops", "analytics"]),
            ("done-bad", 30, ["ops", "team"]),
        ):
            event = build_event(detail(job, status), {}, now)
            assert store.record_terminal(detail(job, status), event, endpoints)
            events[job] = event.event_id
        expired = build_event(detail("old", 10), {}, now, expired=True)
        assert store.expire_watch("old", expired, ["ops"], cutoff=now + 1)
        events["old"] = expired.event_id
        fail_as_before(store, "gone", "vendor: record not found")
        ids = {(d["event_id"], d["endpoint"]): d["id"] for d in store.list_deliveries()}
        for key in [(events["done-ok"], "ops"), (events["done-ok"], "analytics")]:
            assert store.delivery_succeeded(ids[key], 200)
        assert store.delivery_succeeded(ids[(events["old"], "ops")], 204)
        # Pending after a failed attempt, due now; the other one never tried.
        assert store.delivery_failed(ids[(events["done-late"], "ops")], 503, "HTTP 503", now)
        for endpoint in ("ops", "team"):
            assert store.delivery_failed(ids[(events["done-bad"], endpoint)], 500, "500", None)
        store.save_token(f"{simulator.url}#test-app", *vendor_token(simulator))
    return events


def listed(side: Workspace) -> dict[str, int]:
    return {
        "watches": len(side.cli_json("watch", "list")),
        "events": len(side.cli_json("events", "list")),
        "deliveries": len(side.cli_json("deliveries", "list")),
    }


def test_a_migrated_state_is_delivered_by_a_daemon_on_postgres(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    source = workspace.tmp_path / "old.db"
    events = build_source(source, simulator)
    sqlite_side = other_side(workspace, "sqlite", {"path": str(source)})
    pg_side = other_side(workspace, "pg", {"url": pg_url})
    before = listed(sqlite_side)

    result = pg_side.cli(*MIGRATE, str(source), "--json")
    summary = json.loads(result.stdout)
    for table in TABLES:
        assert f"{table}: {summary['rows'][table]} row(s) copied" in result.stderr
    assert summary["rows"] == {
        "watch_queue": 2,
        "watches": 6,
        "events": 4,
        "deliveries": 7,
        "delivery_attempts": 6,
        "discovered": 0,
        "vendor_token": 1,
        "state_marks": 1,
        "gateway_keys": 0,
    }
    assert summary["queue"] == {"pending": 1, "rejected": 1}
    assert summary["deliveries"] == {"pending": 2, "delivered": 3, "dead": 2}
    assert summary["watches"] == {
        "active": 1,
        "succeeded": 2,
        "failed": 2,  # one of them failed by rejection, as an older version left it
        "expired": 1,
        "rejected": 0,
    }
    # What the listings show is what was counted, on both sides.
    assert listed(pg_side) == before == {k: summary["rows"][k] for k in before}
    assert pg_side.cli_json("watch", "rejected") == sqlite_side.cli_json("watch", "rejected")
    text = pg_side.cli(*MIGRATE, str(source), check=False)
    assert text.returncode == 1 and "already holds a state" in text.stderr

    daemon = pg_side.start()
    daemon.wait_ready()
    rec = receiver.receiver
    want = {
        (job, path)
        for job in ("done-late", "mig-active", "mig-queued")
        for path in ("/ops", "/analytics")
    }

    def sent(r: Receiver) -> set[tuple[str, str]]:
        return {(p.payload["data"]["id"], p.path) for p in r.accepted()}

    assert rec.wait_for_blocking(lambda r: sent(r) >= want, timeout=60), rec.summary()

    def settled() -> bool:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'")
            return row.fetchone() == (0,)

    assert wait_until(settled, timeout=30)
    assert daemon.stop() == 0
    # Only what was pending went out: nothing delivered or dead on SQLite was sent again.
    assert sent(rec) == want
    assert all(p.verified for p in rec.accepted())
    late = [p for p in rec.accepted("/ops") if p.payload["data"]["id"] == "done-late"]
    assert [p.webhook_id for p in late] == [events["done-late"]]
    # The copied token was the one used: the simulator issued no other.
    assert simulator.sim.stats()["tokens_issued"] == 1
    states = {d["event_id"]: d["state"] for d in pg_side.cli_json("deliveries", "list")}
    assert states[events["done-bad"]] == "dead"
    shown = json.loads(pg_side.cli("deliveries", "show", events["done-late"], "--json").stdout)
    ops = next(d for d in shown["deliveries"] if d["endpoint"] == "ops")
    assert [a["outcome"] for a in ops["history"]] == ["failed", "delivered"]
    watches = {w["job_id"]: w for w in pg_side.cli_json("watch", "list")}
    assert watches["mig-active"]["labels"] == {"via": "sqlite"}
    assert watches["mig-active"]["state"] == watches["mig-queued"]["state"] == "succeeded"


def test_migrate_refuses_while_a_daemon_runs_on_the_source(
    workspace: Workspace, pg_url: str
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    pg_side = other_side(workspace, "pg", {"url": pg_url})
    refused = pg_side.cli(*MIGRATE, str(workspace.state_path), check=False)
    assert refused.returncode == 1
    assert f"a daemon (pid {daemon.popen.pid}) is running on this state file" in refused.stderr
    assert daemon.stop() == 0
    assert pg_side.cli(*MIGRATE, str(workspace.state_path)).returncode == 0


def test_migrate_refuses_what_it_cannot_do_cleanly(workspace: Workspace, pg_url: str) -> None:
    source = workspace.tmp_path / "s.db"
    with Store(source) as store:
        store.add_watches([WatchSpec("job-1")], "cli")

    # The config names a SQLite state: there is no PostgreSQL target.
    wrong = workspace.cli(*MIGRATE, str(source), check=False)
    assert wrong.returncode == 2
    assert "this config keeps its state in a SQLite file (state.path:" in wrong.stderr

    pg_side = other_side(workspace, "pg", {"url": pg_url})
    missing = pg_side.cli(*MIGRATE, str(workspace.tmp_path / "nope.db"), check=False)
    assert missing.returncode == 1 and "nope.db: no such state file" in missing.stderr

    newer = workspace.tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    too_new = pg_side.cli(*MIGRATE, str(newer), check=False)
    assert too_new.returncode == 1
    assert "schema version 99 is newer than this program's" in too_new.stderr

    pg_side.cli("watch", "add", "already-there")
    full = pg_side.cli(*MIGRATE, str(source), check=False)
    assert full.returncode == 1
    assert "already holds a state (1 watches); a migration never merges" in full.stderr
    assert [w["job_id"] for w in pg_side.cli_json("watch", "list")] == ["already-there"]
    replaced = pg_side.cli(*MIGRATE, str(source), "--replace")
    assert "replaced what the database held before: 1 watches" in replaced.stdout
    assert [w["job_id"] for w in pg_side.cli_json("watch", "list")] == ["job-1"]

    # A daemon on the target (it holds the vendor lease) is refused too.
    daemon = pg_side.start()
    daemon.wait_ready()
    running = pg_side.cli(*MIGRATE, str(source), "--replace", check=False)
    assert running.returncode == 1 and "holds the vendor lease" in running.stderr
    assert daemon.stop() == 0


def test_ctrl_c_midway_leaves_the_target_as_it_was_and_no_daemon_starts_meanwhile(
    workspace: Workspace, pg_url: str
) -> None:
    """The copy is held up at its last step (another session holds the token row it writes):
    meanwhile the source is locked against daemons, and Ctrl-C then undoes everything."""
    source = workspace.tmp_path / "s.db"
    with Store(source) as store:
        store.add_watches([WatchSpec("job-1"), WatchSpec("job-2")], "cli")
        store.save_token("acct", "tok", 1.0)
    Store(pg_url).close()  # the tables, so that the other session can hold the row
    pg_side = other_side(workspace, "pg", {"url": pg_url})
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("INSERT INTO vendor_token VALUES ('acct', 'other', 2.0, 2.0)")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "notifier",
                "-c",
                str(pg_side.config_path),
                *MIGRATE,
                str(source),
            ],
            env=pg_side.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("delivery_attempts:"):
                    break
            assert lines and lines[-1].startswith("delivery_attempts:"), lines
            # What a daemon starting on the source now runs into.
            with pytest.raises(AlreadyRunning) as raised:
                InstanceLock(source).acquire()
            assert raised.value.holder == proc.pid
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=30)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        blocker.rollback()
    assert proc.returncode == 130, rest
    assert "interrupted: nothing was written to" in rest
    with psycopg.connect(pg_url) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES}
    # Nothing but the new database's own mark of when it was created.
    assert counts == {**dict.fromkeys(TABLES, (0,)), "state_marks": (1,)}
    # The lock went with the process: the migration runs again, and completes.
    assert pg_side.cli(*MIGRATE, str(source)).returncode == 0
    assert len(pg_side.cli_json("watch", "list")) == 2
