"""Discovery in the real daemon: ``since: start`` is when the state began and stays so over
a restart; jobs from then on are delivered with the configured labels and endpoints, older
ones never; the vendor budget holds (counted on the simulator's arrival clock)."""

from __future__ import annotations

import signal
import socket
import time

import httpx
import pytest

from notifier.store import Store
from notifier.tools.receiver import Receiver
from tests.kit import ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow

LABELS = {"via": "discovery"}


def delivered(receiver: ReceiverServer) -> dict[str, tuple[str, dict[str, str]]]:
    """{job id: (event type, labels)} of what reached /ops."""
    return {
        r.payload["data"]["id"]: (r.payload["type"], r.payload["data"]["labels"])
        for r in receiver.receiver.accepted("/ops")
    }


def test_new_jobs_are_delivered_and_since_start_survives_a_restart(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    sim = simulator.sim
    before = int(time.time()) - 5
    # Older jobs: one finished, one that finishes while the daemon runs. Never an event.
    sim.add_job("older-done", queue_s=0, run_s=0.1, create_time=before)
    sim.add_job("older-late", queue_s=0, run_s=1.5, create_time=before)
    workspace.config["watch"]["discover"] = {
        "since": "start",
        "labels": LABELS,
        "endpoints": ["ops"],
    }
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    with Store(workspace.state_path, create=False) as store:
        started = store.state_created_at()
    assert started is not None and started > before

    ok = sim.add_job("new-ok", queue_s=0.2, run_s=0.5, outcome=20)
    bad = sim.add_job("new-bad", queue_s=0, run_s=0.3, outcome=30)

    def both(rec: Receiver) -> bool:
        return {ok, bad} <= {r.payload["data"]["id"] for r in rec.accepted("/ops")}

    assert receiver.receiver.wait_for_blocking(both, timeout=30), receiver.receiver.summary()
    assert delivered(receiver) == {
        ok: ("lip_sync.succeeded", LABELS),
        bad: ("lip_sync.failed", LABELS),
    }
    assert not receiver.receiver.accepted("/analytics")  # endpoints: [ops] only
    assert daemon.wait_for_log(lambda r: r.get("event") == "discovered jobs", timeout=5)
    listed = {w["job_id"]: w for w in workspace.cli_json("watch", "list")}
    assert set(listed) == {ok, bad}
    assert listed[ok]["labels"] == LABELS
    assert daemon.wait_for_log(lambda r: r.get("event") == "metrics listening", timeout=5)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert '\nchanjing_discovered_total{account="default"} 2.0\n' in text, text
    assert daemon.stop() == 0

    # While it is down, a job comes and finishes; the restart finds it (its start is kept).
    down = sim.add_job("while-down", queue_s=0, run_s=0.2, outcome=20)
    daemon = workspace.start()
    daemon.wait_ready()

    def found(rec: Receiver) -> bool:
        return any(r.payload["data"]["id"] == down for r in rec.accepted("/ops"))

    assert receiver.receiver.wait_for_blocking(found, timeout=30), receiver.receiver.summary()
    assert daemon.stop() == 0
    with Store(workspace.state_path, create=False) as store:
        assert store.state_created_at() == started
    assert set(delivered(receiver)) == {ok, bad, down}
    assert len(receiver.receiver.accepted("/ops")) == 3  # one event each
    stats = sim.stats()
    assert max(stats["per_second"].values()) <= 10, stats["per_second"]


def test_sighup_turns_discovery_on_and_changes_its_labels(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    """Reload: discovery switched on finds a job that was already there (``since`` before
    it); new labels and kinds apply to the jobs discovered after the reload."""
    sim = simulator.sim
    since = int(time.time()) - 2
    daemon = workspace.start()
    daemon.wait_ready()
    first = sim.add_job("before-on", queue_s=0, run_s=0.3, outcome=20)

    def reloads() -> int:
        return sum(1 for r in daemon.records() if r.get("event") == "reloaded")

    def reload(discover: dict[str, object]) -> None:
        done = reloads()
        workspace.config["watch"]["discover"] = discover
        workspace.write_config()
        daemon.popen.send_signal(signal.SIGHUP)
        assert daemon.wait_for_log(lambda _r: reloads() > done, timeout=20)

    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    reload({"since": iso, "labels": {"round": "one"}, "endpoints": ["ops"]})

    def arrived(job_id: str) -> bool:
        return receiver.receiver.wait_for_blocking(
            lambda rec: any(r.payload["data"]["id"] == job_id for r in rec.accepted("/ops")),
            timeout=30,
        )

    assert arrived(first), receiver.receiver.summary()
    # The second round also reads video's list (a video job made before it is found too).
    video = sim.add_job(kind="video", queue_s=0, run_s=0.3, outcome="succeeded")
    two = {"since": iso, "labels": {"round": "two"}, "endpoints": ["ops"]}
    reload({**two, "kinds": ["lip_sync", "video"]})
    second = sim.add_job("after-change", queue_s=0, run_s=0.3, outcome=30)
    assert arrived(second), receiver.receiver.summary()
    assert arrived(video), receiver.receiver.summary()
    assert daemon.stop() == 0
    got = delivered(receiver)
    assert got == {
        first: ("lip_sync.succeeded", {"round": "one"}),
        second: ("lip_sync.failed", {"round": "two"}),
        video: ("video.succeeded", {"round": "two"}),
    }
