"""The vendor callback reaching a standby node (PostgreSQL state, two real Daemons in this
loop): the standby sends nothing to the vendor, it makes the watch due, and the lease holder,
woken by the database, polls it at once (its poll tick is an hour away)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from notifier.service import daemon as daemon_module
from notifier.tools.receiver import Receiver
from tests.kit import ReceiverServer, Simulator, base_config, daemon_env, free_port, until
from tests.kit.wakeups import HOUR, Running

pytestmark = pytest.mark.slow

CALLBACK_TOKEN = "cb-standby-0f1e2d3c4b5a6978"


def _ids(rec: Receiver) -> list[str]:
    return [r.payload["data"]["id"] for r in rec.accepted("/ops")]


async def test_a_standby_makes_the_watch_due_for_the_lease_holder(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = daemon_env(receiver.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    env["CALLBACK_TOKEN"] = CALLBACK_TOKEN
    monkeypatch.setenv("CALLBACK_TOKEN", CALLBACK_TOKEN)
    # Polls only at start and when woken: nothing else can poll the job in time.
    monkeypatch.setattr(daemon_module, "POLL_TICK", HOUR)
    port = free_port()
    nodes = []
    for name, intake in [
        ("holder", {}),
        ("standby", {"listen": f"127.0.0.1:{port}", "callback_token": "${CALLBACK_TOKEN}"}),
    ]:
        (tmp_path / name).mkdir()
        config = base_config(
            tmp_path / name,
            simulator.url,
            receiver.url,
            state={"url": pg_url, "node": name, "lease": "5s"},
            polling={"min_interval": "30s", "max_interval": "60s", "list_sweep": False},
            intake=intake,
        )
        (tmp_path / name / "watch.yaml").write_text("[]\n")
        nodes.append(Running(tmp_path / name / "config.yaml", config, env))
    holder, standby = nodes
    await holder.start()
    assert holder.daemon.lane.lease.may_call()
    await standby.start()
    assert not standby.daemon.lane.lease.may_call()

    # Long enough to be seen unfinished first even on a loaded machine (the CLI is slow there).
    job = simulator.sim.add_job("standbyjob1", queue_s=8, run_s=1)
    await holder.cli("watch", "add", job)
    # The new watch woke the holder's poller: one look, the job was not finished.
    await until(lambda: simulator.sim.stats()["jobs"][job]["detail_calls"] >= 1)
    await until(lambda: simulator.sim.stats()["jobs"][job]["status_now"] == 20)
    assert simulator.sim.stats()["jobs"][job]["detail_calls"] == 1
    assert not _ids(receiver.receiver)

    calls = standby.daemon.lane.limiter.calls
    hook = f"http://127.0.0.1:{port}/v1/chanjing/callback/{CALLBACK_TOKEN}"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(hook, json={"code": 0, "data": {"id": job, "status": 20}})
    assert answer.status_code == 202
    rec = receiver.receiver
    assert await asyncio.to_thread(rec.wait_for_blocking, lambda r: _ids(r) == [job], 20)
    assert standby.daemon.lane.limiter.calls == calls  # the standby never called the vendor
    counted = standby.daemon.metrics.registry.get_sample_value(
        "chanjing_callbacks_total", {"result": "standby"}
    )
    assert counted == 1
    assert await standby.stop() == 0
    assert await holder.stop() == 0
