"""/healthz going bad, scheduled jobs that raise, and what a reload changes (metrics listener,
vendor client, sweep interval), with the real Daemon running in the test's event loop against
the simulator and receiver on 127.0.0.1. /healthz under a locked state file runs the daemon
as a process, since the lock blocks the daemon's thread."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from structlog.testing import capture_logs

from notifier.config import load_config
from notifier.models import WatchSpec
from notifier.service import daemon as daemon_module
from notifier.service import health as health_module
from notifier.service.daemon import Daemon
from notifier.service.http_server import ServerThread
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import (
    SECRET_KEY,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
    free_port,
    until,
    wait_until,
)

pytestmark = pytest.mark.slow


class Running:
    """A Daemon running in this loop, and its config file."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config
        self.write()
        self.daemon = Daemon(load_config(str(path)), str(path))
        self.task: asyncio.Task[int] | None = None

    def write(self) -> None:
        self.path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    async def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run())
        await until(lambda: self.daemon.scheduler.running)

    async def reload(self) -> bool:
        self.write()
        return await self.daemon.reload()

    async def stop(self) -> int:
        assert self.task is not None
        self.daemon.request_stop()
        return await self.task


@pytest.fixture
async def running(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Running]:
    for name, value in daemon_env(receiver.url).items():
        monkeypatch.setenv(name, value)
    config = base_config(tmp_path, simulator.url, receiver.url)
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    (tmp_path / "watch.yaml").write_text("[]\n")
    r = Running(tmp_path / "config.yaml", config)
    yield r
    if r.task is not None and not r.task.done():
        await r.stop()


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


async def aget(url: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(url)
    except httpx.TransportError:
        return None


async def test_healthz_fails_when_the_poll_tick_stalls_and_recovers(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_module, "HEALTH_STALE_AFTER", 0.5)
    await running.start()
    d = running.daemon
    await until(lambda: d.metrics_server is not None)
    assert d.metrics_server is not None
    url = f"{d.metrics_server.url}/healthz"
    ok = await aget(url)
    assert ok is not None and ok.status_code == 200
    assert ok.text.startswith("ok; vendor lease held by this node")

    # A poll tick that never returns (max_instances=1: no other tick starts meanwhile).
    release = asyncio.Event()

    async def stuck() -> None:
        await release.wait()

    monkeypatch.setattr(d.lane.poller, "tick", stuck)
    answers: list[httpx.Response] = []

    async def stalled() -> bool:
        answer = await aget(url)
        if answer is not None and answer.status_code == 503:
            answers.append(answer)
        return bool(answers)

    for _ in range(500):
        if await stalled():
            break
        await asyncio.sleep(0.02)
    assert answers, "healthz never reported the stall"
    assert answers[0].text.startswith("scheduler stalled: no tick for")
    monkeypatch.undo()  # the real tick again (and the 5 s threshold)
    release.set()
    await until(lambda: d.health()[0])
    assert await running.stop() == 0


async def test_a_scheduled_job_that_raises_is_logged_and_runs_again(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise RuntimeError("housekeeping bug")

    monkeypatch.setattr(daemon_module, "HOUSEKEEPING_TICK", 0.1)
    monkeypatch.setattr(running.daemon.lane.poller, "expire", broken)
    with capture_logs() as logs:
        await running.start()
        await until(lambda: len(calls) >= 3)
        assert running.daemon.health()[0]  # everything else carries on
        assert await running.stop() == 0
    failures = [e for e in logs if e["event"].startswith("scheduled job failed")]
    assert len(failures) >= 3
    assert {e["job"] for e in failures} == {"housekeeping"}
    assert all(e["log_level"] == "error" and e.get("exc_info") for e in failures)


async def test_reload_moves_stops_and_restarts_the_metrics_listener(running: Running) -> None:
    await running.start()
    d = running.daemon
    await until(lambda: d.metrics_server is not None)
    assert d.metrics_server is not None
    first = d.metrics_server.url

    moved = free_port()
    running.config["metrics"] = {"listen": f"127.0.0.1:{moved}"}
    assert await running.reload()
    assert await aget(f"{first}/healthz") is None  # the old port is closed
    answer = await aget(f"http://127.0.0.1:{moved}/healthz")
    assert answer is not None and answer.status_code == 200

    # A port someone else holds: logged, the daemon carries on without a listener.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
        assert await running.reload()
        assert d.metrics_server is None
        assert await aget(f"http://127.0.0.1:{moved}/healthz") is None

    running.config["metrics"] = {"listen": f"127.0.0.1:{moved}"}
    assert await running.reload()
    answer = await aget(f"http://127.0.0.1:{moved}/metrics")
    assert answer is not None and "chanjing_budget_in_use" in answer.text

    running.config.pop("metrics")
    assert await running.reload()
    assert d.metrics_server is None
    assert await aget(f"http://127.0.0.1:{moved}/healthz") is None
    assert await running.stop() == 0


async def test_reload_with_new_base_url_and_credentials_uses_a_new_vendor_client(
    running: Running, receiver: ReceiverServer
) -> None:
    # Another vendor account, on another address, with another secret.
    other = VendorSimulator(SimConfig(app_id="other-app", secret_key="sk-other-123456", seed=3))
    job = other.add_job("othervend1", queue_s=0.1, run_s=0.3, outcome=20)
    with ServerThread(other.make_app) as server:
        await running.start()
        d = running.daemon
        old_vendor = d.lane.vendor
        running.config["chanjing"] = {
            **running.config["chanjing"],
            "base_url": server.url,
            "app_id": "other-app",
            "secret_key": "sk-other-123456",
        }
        assert await running.reload()
        assert d.lane.vendor is not old_vendor and d.lane.poller.vendor is d.lane.vendor
        d.store.add_watches([WatchSpec(job)], "queue")
        await until(
            lambda: job in {r.payload["data"]["id"] for r in receiver.receiver.accepted("/ops")}
        )
        assert other.stats()["tokens_issued"] == 1
        assert "sk-other-123456" in d._secrets()  # redacted from logs from now on
        assert await running.stop() == 0


async def test_reload_with_new_min_interval_reschedules_the_sweep(running: Running) -> None:
    running.config["polling"] = {**running.config["polling"], "list_sweep": True}
    await running.start()
    d = running.daemon
    sweep = d.scheduler.get_job("sweep")
    assert sweep.trigger.interval.total_seconds() == pytest.approx(0.3)
    running.config["polling"] = {
        **running.config["polling"],
        "min_interval": "7s",
        "max_interval": "30s",
    }
    assert await running.reload()
    sweep = d.scheduler.get_job("sweep")
    assert sweep.trigger.interval.total_seconds() == pytest.approx(7.0)
    assert d.lane.poller.settings.min_interval == 7.0
    assert await running.stop() == 0


def test_healthz_fails_while_the_state_file_is_locked(workspace: Workspace) -> None:
    port = free_port()
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    url = f"http://127.0.0.1:{port}/healthz"
    first = get(url)
    assert first is not None and first.status_code == 200
    # Another program holds the write lock: the daemon waits at most 50 ms for it.
    holder = sqlite3.connect(workspace.state_path, timeout=30, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        # The probe behind /healthz runs at most once a second (not a write per request).
        answers: list[httpx.Response] = []
        assert wait_until(
            lambda: answers.append(httpx.get(url, timeout=60)) or answers[-1].status_code == 503,
            timeout=10,
        )
        answer = answers[-1]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503
    assert answer.text.strip() == (
        f"state database {workspace.state_path} cannot be written: "
        "another process holds a write lock on it"
    )
    # Released: healthy again once the store has been probed (at most a second later).
    assert wait_until(lambda: (get(url) or answer).status_code == 200, timeout=10)
    assert daemon.stop() == 0
    assert SECRET_KEY not in daemon.output


async def test_reload_adds_changes_and_removes_accounts(running: Running) -> None:
    """Issue 22: SIGHUP with an ``accounts`` section makes a lane for a new account (its own
    budget and lease, shown by name), configures a kept one and retires a removed one."""
    await running.start()
    d = running.daemon
    one = running.config.pop("chanjing")
    running.config["accounts"] = [
        {"name": "default", **one},
        {"name": "media", **one, "app_id": "media-app", "qps": 4},
    ]
    assert await running.reload()
    assert list(d.lanes) == ["default", "media"]
    assert d.lanes["media"].limiter.qps == 4
    await until(lambda: d.lanes["media"].lease.may_call())  # one node: its lease at once
    assert d.lanes["media"].lease.name == "vendor:media"
    text = d.status_text()
    assert "default: vendor lease held by this node" in text, text
    assert "media: vendor lease held by this node" in text, text
    d.store.add_watches([WatchSpec("media-job", account="media")], "queue")
    running.config["accounts"] = [{"name": "default", **one, "qps": 3}]
    assert await running.reload()
    assert list(d.lanes) == ["default"] and d.lane.limiter.qps == 3
    # The removed account's watch stays, and the status line says it waits for it.
    text = d.status_text()
    assert "media: vendor lease" not in text, text
    assert text.endswith("; waiting for accounts not configured: media (1)"), text
    assert d.store.get_watch("media-job", account="media") is not None
    assert await running.stop() == 0
