"""The QPS budget, as the vendor counts it: read from the simulator's own per-second counter."""

from __future__ import annotations

import statistics

import pytest

from notifier.receiver import Receiver
from tests.conftest import ReceiverServer, Simulator, Workspace

pytestmark = pytest.mark.slow


def test_300_jobs_use_at_least_90_percent_of_budget_without_40001(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    jobs = [
        simulator.sim.add_job(
            f"load{i:03d}",
            queue_s=1.0 + (i % 5),
            run_s=2.0 + (i % 7),
            outcome=30 if i % 10 == 0 else 20,
        )
        for i in range(300)
    ]
    workspace.config["polling"] = {"min_interval": "1s", "max_interval": "30s"}
    workspace.config["endpoints"] = workspace.config["endpoints"][:1]  # ops: every event
    workspace.write_config()
    workspace.cli("watch", "add", *jobs)
    simulator.sim.reset_stats()

    daemon = workspace.start()
    daemon.wait_ready()

    def all_delivered(r: Receiver) -> bool:
        return len({p.payload["data"]["id"] for p in r.accepted("/ops")}) == len(jobs)

    assert receiver.receiver.wait_for_blocking(all_delivered, timeout=120), (
        receiver.receiver.summary()
    )
    assert daemon.stop() == 0

    stats = simulator.sim.stats()
    per_second = [n for _, n in sorted(stats["per_second"].items(), key=lambda kv: int(kv[0]))]
    # Every job must be polled once more after it finished: >= 300 calls, >= 30 s of backlog.
    assert stats["calls"] >= len(jobs)
    assert max(per_second) <= 10, per_second
    throttled = stats["codes"].get("40001", 0)
    assert throttled <= 0.005 * stats["calls"], stats["codes"]
    # The first 25 full seconds are all backlog (300 jobs, 10/s): the budget must be used.
    busy = per_second[1:26]
    assert statistics.mean(busy) >= 9.0, per_second
