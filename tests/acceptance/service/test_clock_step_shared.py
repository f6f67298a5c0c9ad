"""One node's clock step on a shared PostgreSQL state (issue 19, item 1): it must move only
that node's own view, never the shared schedule, and a node whose clock is off the
database's sends nothing and calls nothing until it agrees again.

Two real daemons on the test PostgreSQL; node B runs under libfaketime (its wall clock is
stepped by the offset file, its steady clocks are left alone). Each node posts to a path of
its own on one receiver (the endpoint ``ops`` has another URL in each node's config), and
the simulator logs which process made each vendor call: so what the stepped node sent is
seen from outside, on the test's own (unstepped) clock.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from notifier.polling.lease import IN_FLIGHT
from notifier.service.http_server import ServerThread
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import (
    OPS_SECRET,
    SECRET_KEY,
    ArrivalLog,
    DaemonProcess,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
    free_port,
    steppable_clock,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

JOBS = 12
WAIT = 60.0
ACQUIRED = "vendor lease acquired; this node calls the vendor"
DISAGREES = (
    "this node's clock disagrees with the database's; it sends no webhooks and calls no "
    "vendor until they agree"
)
AGREES = "this node's clock agrees with the database's again; sending and calling resumed"
#: Standard Webhooks receivers allow 5 minutes; a node on the database's time is far closer.
TIMESTAMP_TOLERANCE = 5.0


@pytest.fixture
def arrivals() -> ArrivalLog:
    return ArrivalLog()


@pytest.fixture
def simulator(arrivals: ArrivalLog) -> Iterator[Simulator]:
    sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=10, seed=3))
    with ServerThread(arrivals.wrap(sim.make_app)) as server:
        yield Simulator(sim, server)


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    """Node A posts to /a, node B to /b; both paths check signatures (5-minute tolerance)."""
    rec = Receiver({"/a": [OPS_SECRET], "/b": [OPS_SECRET]})
    with ServerThread(rec.make_app) as server:
        yield ReceiverServer(rec, server)


def node(
    tmp_path: Path, name: str, sim_url: str, receiver_url: str, pg_url: str
) -> tuple[Workspace, int]:
    home = tmp_path / name
    home.mkdir()
    port = free_port()
    config = base_config(
        home,
        sim_url,
        receiver_url,
        state={"url": pg_url, "lease": "3s"},
        # give_up_after 1h: a schedule moved back by the 1 h step would expire them all.
        polling={"min_interval": "300ms", "max_interval": "1s", "give_up_after": "1h"},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    ops = config["endpoints"][0]
    ops["url"] = f"{receiver_url}/{name}"
    ops["secret"] = "${OPS_SECRET}"
    config["endpoints"] = [ops]
    ws = Workspace(home, config, daemon_env(receiver_url))
    ws.write_config()
    ws.write_watch([])
    return ws, port


def jobs_of(rec: Receiver, path: str | None = None) -> set[str]:
    return {r.payload["data"]["id"] for r in rec.accepted(path)}


@pytest.mark.parametrize(
    ("stepped", "step"),
    [("holder", "+3600"), ("standby", "-3600")],
    ids=["holder-forward-1h", "standby-back-1h"],
)
def test_one_nodes_clock_step_moves_nothing_shared(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    arrivals: ArrivalLog,
    pg_url: str,
    stepped: str,
    step: str,
) -> None:
    a, _ = node(tmp_path, "a", simulator.url, receiver.url, pg_url)
    b, b_port = node(tmp_path, "b", simulator.url, receiver.url, pg_url)
    offset = steppable_clock(tmp_path, b.env)
    rec = receiver.receiver

    def start(ws: Workspace) -> DaemonProcess:
        proc = ws.start()
        arrivals.watch(proc.popen.pid)
        proc.wait_ready()
        return proc

    procs: list[DaemonProcess] = []
    try:
        first = start(b if stepped == "holder" else a)
        procs.append(first)
        assert first.wait_for_log(lambda r: r.get("event") == ACQUIRED, WAIT), first.output
        second = start(a if stepped == "holder" else b)
        procs.append(second)
        node_a, node_b = (second, first) if stepped == "holder" else (first, second)

        # Long enough to be running (and scheduled) through the whole step.
        jobs = [
            simulator.sim.add_job(f"shared{i:02d}", queue_s=0.5, run_s=3.0 + i * 0.5, outcome=20)
            for i in range(JOBS)
        ]
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO watch_queue (job_id) VALUES (%s)", [(j,) for j in jobs])
        stats = simulator.sim.stats
        assert wait_until(lambda: all(stats()["jobs"][j]["detail_calls"] > 0 for j in jobs), WAIT)

        offset.write_text(f"{step}\n")
        assert node_b.wait_for_log(lambda r: r.get("event") == DISAGREES, WAIT), node_b.output
        paused_at = time.time()
        health = httpx.get(f"http://127.0.0.1:{b_port}/healthz", timeout=5)
        assert health.status_code == 503, health.text
        assert "off the database's" in health.text, health.text
        metrics = httpx.get(f"http://127.0.0.1:{b_port}/metrics", timeout=5).text
        assert "chanjing_clock_skew_seconds" in metrics

        # While B's clock is an hour off, A alone reports every job (taking the lease from
        # a stepped holder), on time and signed on the right time.
        assert rec.wait_for_blocking(lambda r: jobs_of(r) >= set(jobs), WAIT), rec.summary()
        unstepped_at = time.time()
        offset.write_text("+0\n")
        assert node_b.wait_for_log(lambda r: r.get("event") == AGREES, WAIT), node_b.output
        health = httpx.get(f"http://127.0.0.1:{b_port}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        assert node_a.stop() == 0
        assert node_b.stop() == 0
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                os.kill(proc.popen.pid, signal.SIGCONT)
                proc.popen.kill()
                proc.popen.wait(10)

    received = rec.all()
    # Every webhook carried a timestamp the receiver accepts: within seconds of its clock.
    late = [
        (r.path, r.timestamp, r.received_at)
        for r in received
        if r.timestamp is None or abs(int(r.timestamp) - r.received_at) > TIMESTAMP_TOLERANCE
    ]
    assert late == [], late
    assert all(r.verified for r in received), [r.as_json() for r in received if not r.verified]
    # None expired early: every job succeeded, one event each.
    assert {r.payload["type"] for r in received} == {"lip_sync.succeeded"}
    with psycopg.connect(pg_url) as conn:
        states = dict(conn.execute("SELECT job_id, state FROM watches").fetchall())
        events = conn.execute("SELECT job_id, type FROM events").fetchall()
    assert states == dict.fromkeys(jobs, "succeeded"), states
    assert sorted(events) == sorted((j, "lip_sync.succeeded") for j in jobs)
    # The stepped node sent nothing and called nothing while its clock was off: from a
    # second after it said so (a request that passed its last check just before the pause
    # may still be on its way for IN_FLIGHT; traced, that takes longer).
    quiet_from = paused_at + IN_FLIGHT
    b_sent = [r.received_at for r in rec.all("/b") if quiet_from <= r.received_at <= unstepped_at]
    assert b_sent == []
    b_called = arrivals.times(node_b.popen.pid, since=quiet_from)
    assert [t for t in b_called if t <= unstepped_at] == []
    assert any(who == node_a.popen.pid for _t, who in arrivals.arrivals), "A never polled"
    errors: list[dict[str, Any]] = [
        r
        for r in node_a.records()
        if r.get("level") == "error" or r.get("event") == "watches expired"
    ]
    assert errors == [], errors
