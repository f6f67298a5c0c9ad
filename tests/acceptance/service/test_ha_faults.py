"""Two real daemons on one PostgreSQL, each under one of the faults of issue 19: both named
alike, different watch files, and one node's clock stepped forward or back while it works.

Judged from outside the daemons, as test_ha_pair.py is: every job reported (0 lost), one
event per job and one webhook-id per job at the receiver (every request verified, so no
webhook-timestamp off by the step either), and never more than ``qps`` vendor calls in a
calendar second of the simulator's clock (untraced passes only: tracing slows every process
several fold, see tests/conftest.py TRACED).
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.kit import (
    TRACED,
    DaemonProcess,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
    steppable_clock,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.realtime, pytest.mark.timeout(300)]

QPS = 10
JOBS = 24
#: Bounded waits, generous for a loaded 2-core machine; none of them is a measurement.
WAIT = 60.0
#: How far the stepped node's clock moves, and for how many jobs reported meanwhile.
STEP = 3600


def _jobs(simulator: Simulator) -> list[str]:
    """Completions spread over ~15 s; every fifth fails."""
    return [
        simulator.sim.add_job(
            f"hafault{i:02d}",
            queue_s=0.5 + (i % 3),
            run_s=2.0 + (i * 0.61) % 14,
            outcome=30 if i % 5 == 0 else 20,
        )
        for i in range(JOBS)
    ]


def _workspace(
    root: Path, name: str, simulator: Simulator, receiver: ReceiverServer, pg_url: str, node: str
) -> Workspace:
    tmp = root / name
    tmp.mkdir()
    config = base_config(
        tmp,
        simulator.url,
        receiver.url,
        state={"url": pg_url, "lease": "3s", "node": node},
        polling={"min_interval": "500ms", "max_interval": "2s", "give_up_after": "1h"},
    )
    config["endpoints"] = config["endpoints"][:1]  # ops: every event
    ws = Workspace(tmp, config, daemon_env(receiver.url))
    ws.write_config()
    ws.write_watch([])
    return ws


def _reported(receiver: ReceiverServer) -> set[str]:
    return {p.payload["data"]["id"] for p in receiver.receiver.accepted("/ops")}


def _wait_reported(receiver: ReceiverServer, count: int) -> None:
    assert receiver.receiver.wait_for_blocking(
        lambda r: len({p.payload["data"]["id"] for p in r.accepted("/ops")}) >= count, WAIT
    ), receiver.receiver.summary()


def _settled(pg_url: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE state != 'delivered'").fetchone()
    return row is not None and row[0] == 0


@pytest.mark.parametrize("fault", ["same-name", "watch-files", "clock-forward", "clock-back"])
def test_two_nodes_under_a_fault(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_url: str,
    fault: str,
) -> None:
    same = fault == "same-name"
    first = _workspace(tmp_path, "a", simulator, receiver, pg_url, "web" if same else "web-a")
    second = _workspace(tmp_path, "b", simulator, receiver, pg_url, "web" if same else "web-b")
    offset: Path | None = None
    if fault.startswith("clock"):
        # The first node (the lease holder) runs on a clock the test steps.
        offset = steppable_clock(tmp_path, first.env)
    jobs = _jobs(simulator)
    # Every node's file lists every job, except with "watch-files": the second node's is an
    # older copy with half of them (its sync must not remove the others).
    first.write_watch(jobs)
    second.write_watch(jobs[: JOBS // 2] if fault == "watch-files" else jobs)
    procs: list[DaemonProcess] = []
    try:
        procs.append(first.start())
        procs[0].wait_ready()
        procs.append(second.start())
        procs[1].wait_ready()
        _wait_reported(receiver, 3)
        if offset is not None:
            offset.write_text(f"{'+' if fault == 'clock-forward' else '-'}{STEP}\n")
            _wait_reported(receiver, JOBS // 2)
            offset.write_text("+0\n")  # NTP sets it right again
        _wait_reported(receiver, JOBS)
        assert wait_until(lambda: _settled(pg_url), WAIT)
        for proc in procs:
            assert proc.stop() == 0, proc.output
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                os.kill(proc.popen.pid, signal.SIGCONT)
                proc.popen.kill()
                proc.popen.wait(10)

    # 0 lost, one event per job of the job's outcome.
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in first.cli_json("events", "list"):
        by_job[event["job_id"]].append(event)
    assert sorted(by_job) == sorted(jobs)
    for i, job in enumerate(jobs):
        (event,) = by_job[job]
        assert event["type"] == ("lip_sync.failed" if i % 5 == 0 else "lip_sync.succeeded")
    # One webhook-id per job, that event's, on requests that all verify (timestamps too).
    ids: dict[str, set[str | None]] = defaultdict(set)
    for record in receiver.receiver.all("/ops"):
        assert record.verified, record
        ids[record.payload["data"]["id"]].add(record.webhook_id)
    assert ids == {job: {by_job[job][0]["event_id"]} for job in jobs}
    assert _reported(receiver) == set(jobs)
    if not TRACED:
        per_second = simulator.sim.stats()["per_second"]
        assert max(per_second.values()) <= QPS, per_second
