"""Wake-ups on a PostgreSQL state: what another connection or a CLI command writes runs the
daemon's job at once, not at its tick. The real Daemon runs in the test's event loop (so the
ticks in question can be made an hour long: only a wake-up can then do the work in time),
against a real PostgreSQL server, the simulator and the receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from structlog.testing import capture_logs

from notifier.service import daemon as daemon_module
from notifier.service import wakeups as wakeups_module
from notifier.tools.receiver import Receiver
from tests.kit import ReceiverServer, Simulator, base_config, daemon_env, until
from tests.kit.wakeups import HOUR, Running

pytestmark = pytest.mark.slow


@pytest.fixture
async def running(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Running]:
    env = daemon_env(receiver.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The jobs a wake-up stands in for run at start, then not for an hour.
    monkeypatch.setattr(daemon_module, "QUEUE_TICK", HOUR)
    monkeypatch.setattr(daemon_module, "DISPATCH_TICK", HOUR)
    config = base_config(tmp_path, simulator.url, receiver.url, state={"url": pg_url})
    (tmp_path / "watch.yaml").write_text("[]\n")
    r = Running(tmp_path / "config.yaml", config, env)
    yield r
    if r.task is not None and not r.task.done():
        await r.stop()


def plain_insert(url: str, job_id: str) -> None:
    """What a producer on another host does."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO watch_queue (job_id) VALUES (%s)", (job_id,))


def sources(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT job_id, source FROM watches").fetchall())


def ops_ids(rec: Receiver) -> list[str]:
    return [p.payload["data"]["id"] for p in rec.accepted("/ops")]


async def test_a_plain_insert_into_the_queue_is_taken_and_polled_at_once(
    running: Running, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    await running.start()
    job = simulator.sim.add_job("woken1", queue_s=0.2, run_s=0.4, outcome=20)
    await asyncio.to_thread(plain_insert, pg_url, job)

    # The intake tick is an hour away: the wake-up took the row.
    await until(lambda: sources(pg_url).get(job) == "queue")
    assert running.wakeups_counted("queue") >= 1
    # ... and the job is polled and delivered as usual from there.
    rec = receiver.receiver
    assert await asyncio.to_thread(rec.wait_for_blocking, lambda r: job in ops_ids(r), 30)
    assert await running.stop() == 0


async def test_a_replay_from_the_cli_is_attempted_at_once(
    running: Running, simulator: Simulator, receiver: ReceiverServer
) -> None:
    await running.start()
    job = simulator.sim.add_job("replayed1", queue_s=0.2, run_s=0.4, outcome=20)
    await running.cli("watch", "add", job)
    rec = receiver.receiver
    # The first attempt follows the event in-process (the dispatcher is kicked by the poller).
    assert await asyncio.to_thread(rec.wait_for_blocking, lambda r: ops_ids(r) == [job], 30)
    assert running.wakeups_counted("watch") >= 1  # the CLI's new watch woke the poller

    def settled() -> bool:
        rows = running.daemon.store.delivery_counts_by_endpoint()
        return rows.get(("delivered", "ops"), 0) == 1

    await until(settled)
    listed = await running.cli("events", "list", "--json")
    (event,) = yaml.safe_load(listed.stdout)
    before = running.wakeups_counted("delivery")
    await running.cli("deliveries", "replay", event["event_id"])

    # The dispatch tick is an hour away: the wake-up sent it.
    assert await asyncio.to_thread(rec.wait_for_blocking, lambda r: ops_ids(r) == [job] * 2, 30)
    assert running.wakeups_counted("delivery") > before
    assert await running.stop() == 0


async def test_the_listener_reconnects_after_its_backend_is_terminated(
    running: Running, simulator: Simulator, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeups_module, "RECONNECT_MAX", 0.5)
    await running.start()
    name = sql.Literal("chanjing-notifier listen")
    dbname = conninfo_to_dict(pg_url)["dbname"]

    maintenance = make_conninfo(pg_url, dbname="postgres")

    def admin(statement: str) -> None:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(statement)

    def terminate_listener() -> None:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            query = sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = {} AND datname = {}"
            ).format(name, sql.Literal(dbname))
            assert conn.execute(query).fetchall() == [(True,)]

    with capture_logs() as logs:
        # Terminated, and no connection to the database possible for a while: several
        # reconnects fail, and the outage is said once.
        await asyncio.to_thread(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        await asyncio.to_thread(terminate_listener)
        await until(lambda: running.wakeups.failures >= 3)
        assert not running.wakeups.listening.is_set()
        await asyncio.to_thread(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await until(running.wakeups.listening.is_set)
        # Once more, with the server accepting at once.
        await asyncio.to_thread(terminate_listener)
        await until(lambda: running.wakeups.connections >= 3)

        job = simulator.sim.add_job("after1", queue_s=0.2, run_s=0.4, outcome=20)
        await asyncio.to_thread(plain_insert, pg_url, job)
        await until(lambda: sources(pg_url).get(job) == "queue")
        assert running.daemon.health()[0]
        assert await running.stop() == 0

    lost = [e for e in logs if e["event"].startswith("cannot listen for changes")]
    back = [e for e in logs if e["event"].startswith("listening for changes again")]
    assert len(lost) == len(back) == 2, [e["event"] for e in logs]
    assert all(e["log_level"] == "warning" and "error" in e for e in lost)
