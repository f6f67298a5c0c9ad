"""Two real daemons on the test PostgreSQL, both given ``state.node: web-1`` (two units on one
host with ``node: ${HOSTNAME}``; containers that all run as PID 1 under one hostname): the
lease's owner is unique per process, so only one of them holds it and calls the vendor; the
second is warned that its name is in use, and takes over under the same name when the
first stops (issue 19, item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.store import Store
from tests.kit import ReceiverServer, Simulator, Workspace, base_config, daemon_env

pytestmark = pytest.mark.slow

NAME = "web-1"
ACQUIRED = "vendor lease acquired; this node calls the vendor"
NAME_IN_USE = "another live process uses this node name"


def events(records: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [r for r in records if str(r.get("event", "")).startswith(prefix)]


def test_two_processes_with_one_node_name_never_both_hold_the_lease(
    tmp_path: Any, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    config = base_config(
        tmp_path, simulator.url, receiver.url, state={"url": pg_url, "lease": "3s", "node": NAME}
    )
    ws = Workspace(tmp_path, config, daemon_env(receiver.url))
    ws.write_config()
    ws.write_watch([])
    first = ws.start()
    first.wait_ready()
    assert events(first.records(), ACQUIRED), first.output
    calls_before = simulator.sim.stats()["calls"]

    second = ws.start()
    second.wait_ready()  # its first look (lease and name) is made before it is ready
    records = second.records()
    assert events(records, ACQUIRED) == [], second.output  # the first holds it
    (warned,) = events(records, NAME_IN_USE)
    assert (warned["level"], warned["node"]) == ("warning", NAME)
    assert events(first.records(), NAME_IN_USE) == []  # the first had it to itself
    with Store(pg_url) as store:
        holder = store.lease_holder("vendor")
    assert holder is not None and holder[0] == NAME  # others see the name, not the id

    # A job to poll: only the holder calls the vendor, the second stays a standby.
    job = simulator.sim.add_job("samename01", queue_s=0.1, run_s=0.2, outcome=20)
    ws.cli("watch", "add", job)
    assert receiver.receiver.wait_for_blocking(lambda r: len(r.accepted("/ops")) >= 1, 30)
    assert simulator.sim.stats()["calls"] > calls_before
    assert events(second.records(), ACQUIRED) == []
    assert "lost" not in str([r.get("event") for r in first.records()])

    # A clean stop of the first: the second takes over, under the same name.
    assert first.stop() == 0
    assert second.wait_for_log(lambda r: str(r.get("event")).startswith(ACQUIRED), 15)
    (acquired,) = events(second.records(), ACQUIRED)
    assert (acquired["node"], acquired["previous_holder"]) == (NAME, NAME)
    assert second.stop() == 0
