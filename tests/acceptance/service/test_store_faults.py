"""The real daemon when its state cannot be written, and beside a second daemon (issue 8:
defects 2, 4, 5, 15)."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notifier.tools.receiver import Receiver
from tests.kit import (
    NotifySocket,
    ReceiverServer,
    Simulator,
    SmallDisk,
    Workspace,
    free_port,
    small_disk,
    wait_until,
)

pytestmark = pytest.mark.slow

CANNOT_WRITE = "state database cannot be written; polling and delivery are paused until it can"
RESUMED = "state database writable again; polling and delivery resumed"


def events(daemon_records: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [r for r in daemon_records if r.get("event") == name]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "small", "2m") as d:
        yield d


def test_full_disk_pauses_reports_once_and_resumes(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    disk: SmallDisk,
    tmp_path: Path,
) -> None:
    port = free_port()
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    workspace.env["NOTIFY_SOCKET"] = notify.address
    workspace.config["state"] = {"path": str(disk.path / "state.db")}
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    jobs = [
        simulator.sim.add_job(f"full{i:02d}", queue_s=0.5, run_s=1.0, outcome=20) for i in range(6)
    ]
    workspace.cli("watch", "add", *jobs)
    daemon = workspace.start()
    daemon.wait_ready()
    disk.fill()

    assert daemon.wait_for_log(lambda r: r.get("event") == CANNOT_WRITE, timeout=20), daemon.output
    line = events(daemon.records(), CANNOT_WRITE)[0]
    assert line["cause"] == "the disk is full"
    assert line["file"] == str(disk.path / "state.db")
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert health.status_code == 503 and "the disk is full" in health.text
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "chanjing_state_writable 0.0" in metrics
    assert notify.wait_for(
        lambda ns: any(ln.startswith("STATUS=PAUSED: cannot write") for _, ln in ns.lines()),
        timeout=10,
    )

    # The jobs finish while the disk is full; nothing is polled, sent or lost meanwhile.
    def all_finished() -> bool:
        return all(j["status"] == 20 for j in simulator.sim.jobs() if j["id"] in jobs)

    assert wait_until(all_finished, timeout=20)
    calls_while_full = simulator.sim.stats()["by_path"]
    during = daemon.records()
    assert len(events(during, CANNOT_WRITE)) == 1  # once, not per tick (repeats once a minute)
    assert not [r for r in during if "exception" in r], daemon.output
    assert receiver.receiver.accepted("/ops") == []

    disk.free()
    freed_at = time.monotonic()
    assert daemon.wait_for_log(lambda r: r.get("event") == RESUMED, timeout=10), daemon.output
    assert time.monotonic() - freed_at < 5.0

    def all_delivered(r: Receiver) -> bool:
        return {x.payload["data"]["id"] for x in r.accepted("/ops")} == set(jobs)

    assert receiver.receiver.wait_for_blocking(all_delivered, timeout=30), daemon.output
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert simulator.sim.stats()["by_path"] != calls_while_full  # polling resumed
    assert daemon.stop() == 0
    notify.close()


def test_another_writers_lock_does_not_stall_the_loop(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    port = free_port()
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(lambda r: r.get("event") == "metrics listening", timeout=10)
    job = simulator.sim.add_job("locked01", queue_s=0.2, run_s=0.5, outcome=20)
    other = sqlite3.connect(workspace.state_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a big `watch add` or another program's transaction
    try:
        other.execute("INSERT INTO watch_queue (job_id) VALUES (?)", (job,))
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            slowest = max(slowest, time.monotonic() - started)
        # Before: every store write on the loop waited up to 10 s for the lock.
        assert slowest < 2.0, slowest
        assert answer.status_code == 503
        assert "another process holds a write lock" in answer.text
    finally:
        other.execute("COMMIT")
        other.close()
    # Released: the queued id is taken and delivered without anyone's help.
    assert receiver.receiver.wait_for_blocking(
        lambda r: any(x.payload["data"]["id"] == job for x in r.accepted("/ops")), timeout=30
    ), daemon.output
    # A lock of a few seconds is routine: no error for it.
    assert events(daemon.records(), CANNOT_WRITE) == []
    assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_state_refuses_to_start(
    workspace: Workspace, simulator: Simulator
) -> None:
    first = workspace.start()
    first.wait_ready()
    second = workspace.start()
    assert second.popen.wait(20) == 1
    second._reader.join(5)
    assert str(workspace.state_path) in second.output
    assert f"pid {first.popen.pid}" in second.output
    assert "already running" in second.output
    # The way out it suggests is not a second daemon on the account (issue 17).
    assert "share one state through PostgreSQL (state.url)" in second.output
    assert "its own state.path" not in second.output
    # CLI commands keep working beside the daemon.
    job = simulator.sim.add_job("beside01", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.cli("watch", "add", job)
    assert [w["job_id"] for w in workspace.cli_json("watch", "list")] == [job]
    # The lock dies with its holder (kill -9 included): no stale lock to clean up.
    first.kill9()
    third = workspace.start()
    third.wait_ready()
    assert third.stop() == 0


def test_reload_that_changes_state_path_keeps_and_reports_the_running_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    running = str(workspace.state_path)
    elsewhere = tmp_path / "elsewhere" / "state.db"
    workspace.config["state"] = {"path": str(elsewhere)}
    workspace.write_config()
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    records = daemon.records()
    warning = next(r for r in records if str(r.get("event", "")).startswith("state.path changed"))
    assert warning["running"] == running and warning["configured"] == str(elsewhere)
    assert events(records, "reloaded")[0]["state"] == running
    assert not elsewhere.exists()
    assert daemon.stop() == 0
