"""The daemon when the system clock steps (issue 8, defect 11): a step back must not stall
polling, a step forward must not expire what is still running.

The daemon runs under libfaketime, which shifts the wall clock the process sees (and leaves its
monotonic clock alone) by an offset read from a file at every call; the tests change the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import ReceiverServer, Simulator, Workspace, steppable_clock, wait_until

pytestmark = pytest.mark.slow

STEPPED = "system clock stepped; pending polls, deliveries and expiries move with it"


@pytest.fixture
def clock_file(workspace: Workspace, tmp_path: Path) -> Iterator[Path]:
    yield steppable_clock(tmp_path, workspace.env)


def _delivered(receiver: ReceiverServer, job: str) -> bool:
    return receiver.receiver.wait_for_blocking(
        lambda r: any(x.payload["data"]["id"] == job for x in r.accepted("/ops")), timeout=30
    )


@pytest.mark.parametrize("step", ["-3600", "+172800"], ids=["back-1h", "forward-2d"])
def test_a_clock_step_neither_stalls_nor_expires(
    workspace: Workspace,
    simulator: Simulator,
    receiver: ReceiverServer,
    clock_file: Path,
    step: str,
) -> None:
    # The simulator keeps real time: only the daemon's clock steps.
    job = simulator.sim.add_job("clockstep1", queue_s=0.5, run_s=4.0, outcome=20)
    workspace.cli("watch", "add", job)
    daemon = workspace.start()
    daemon.wait_ready()
    # Step once the daemon has seen the job running, so a poll is scheduled when it steps.
    assert wait_until(lambda: simulator.sim.stats()["jobs"][job]["detail_calls"] > 0, 20)
    clock_file.write_text(f"{step}\n")
    assert daemon.wait_for_log(lambda r: r.get("event") == STEPPED, timeout=10), daemon.output
    # NTP sets it right again: receivers reject signatures an hour off (replay protection),
    # and a stall or an expiry from the first step would not be undone by this one.
    clock_file.write_text("+0\n")
    back = -float(step)
    assert daemon.wait_for_log(
        lambda r: r.get("event") == STEPPED and abs(float(r["step_seconds"]) - back) < 60,
        timeout=10,
    ), daemon.output
    assert _delivered(receiver, job), daemon.output
    (watch,) = workspace.cli_json("watch", "list")
    assert watch["state"] == "succeeded"
    assert not [r for r in daemon.records() if r.get("event") == "watches expired"]
    assert daemon.stop() == 0
    assert not [r for r in daemon.records() if r.get("level") == "error"], json.dumps(
        daemon.records(), indent=1
    )
