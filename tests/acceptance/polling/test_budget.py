"""The QPS budget, as the vendor counts it: read from the simulator's own per-second counter."""

from __future__ import annotations

import sqlite3
import statistics

import pytest

from notifier.tools.receiver import Receiver
from tests.kit import CPU_LOADED, TRACED, ReceiverServer, Simulator, Workspace

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.mark.parametrize("list_sweep", [False, True], ids=["detail-only", "with-list-sweep"])
def test_300_jobs_use_at_least_90_percent_of_budget_without_40001(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer, list_sweep: bool
) -> None:
    workspace.config["polling"] = {
        "min_interval": "1s",
        "max_interval": "30s",
        "list_sweep": list_sweep,
    }
    workspace.config["endpoints"] = workspace.config["endpoints"][:1]  # ops: every event
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    # The jobs' timelines start now that the daemon is up (however long its start-up took),
    # and the queue table hands them over without a CLI process in between.
    simulator.sim.reset_stats()
    jobs = [
        simulator.sim.add_job(
            f"load{i:03d}",
            queue_s=1.0 + (i % 5),
            run_s=2.0 + (i % 7),
            outcome=30 if i % 10 == 0 else 20,
        )
        for i in range(300)
    ]
    with sqlite3.connect(workspace.state_path) as db:
        db.executemany("INSERT INTO watch_queue (job_id) VALUES (?)", [(j,) for j in jobs])

    def all_delivered(r: Receiver) -> bool:
        return len({p.payload["data"]["id"] for p in r.accepted("/ops")}) == len(jobs)

    assert receiver.receiver.wait_for_blocking(all_delivered, timeout=150), (
        receiver.receiver.summary()
    )
    assert daemon.stop() == 0

    # Everything below is read on the simulator's clock: arrivals per calendar second as
    # the vendor counts them, and when its jobs completed.
    if TRACED:
        return
    stats = simulator.sim.stats()
    counts = {int(second): n for second, n in stats["per_second"].items()}
    assert max(counts.values()) <= 10, counts
    throttled = stats["codes"].get("40001", 0)
    assert throttled <= 0.005 * stats["calls"], stats["codes"]
    if CPU_LOADED:
        return
    # While jobs were still running every job wanted a poll each second: the budget must
    # be used. Whole seconds only, from the first after the first call to the last before
    # the last job completed.
    last = max(job["completed_at"] for job in simulator.sim.jobs())
    first = min(counts)
    busy = [counts.get(s, 0) for s in range(first + 1, int(last) - 1)]
    assert len(busy) >= 5, counts
    assert statistics.mean(busy) >= 9.0, counts
