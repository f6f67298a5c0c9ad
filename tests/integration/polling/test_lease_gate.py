"""Every vendor call passes the lease gate: the real poller, limiter and vendor client against
the real simulator on 127.0.0.1, with the lease in a real SQLite file whose clock is pinned to
a FakeClock, and the keeper's steady clock a FakeClock too (a freeze is a jump of it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from notifier.models import WatchSpec
from notifier.polling.lease import LeaseKeeper, LeaseLost, LeaseSettings
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import DETAIL_PATH, LIST_PATH, TOKEN_PATH, VendorClient
from notifier.service.http_server import AppServer
from notifier.store import Store
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, FakeClock, until
from tests.kit.lease import EPS, pin_db_clock
from tests.kit.poller import poller_settings
from tests.kit.vendor import vendor_client

SETTINGS = PollingSettings(min_interval=1, max_interval=60, give_up_after=86400)
SUBSCRIPTIONS = [("ops", ["lip_sync.succeeded", "lip_sync.failed"])]
TTL = 10.0


@dataclass
class Node:
    sim: VendorSimulator
    store: Store
    limiter: RateLimiter
    client: VendorClient
    poller: Poller
    keeper: LeaseKeeper
    steady: FakeClock
    db_clock: FakeClock
    other: Store
    observed: list[tuple[str, str]] = field(default_factory=list)

    def calls(self, path: str) -> int:
        return int(self.sim.stats()["by_path"].get(path, 0))

    def watch(self, job_id: str) -> dict[str, Any]:
        (row,) = [w for w in self.store.list_watches() if w["job_id"] == job_id]
        return row

    def lose_the_lease(self) -> None:
        """This node stops renewing (frozen); its lease runs out and node B takes it."""
        self.db_clock.advance(TTL + EPS)
        assert self.other.acquire_lease("vendor", "B", TTL) is not None


@pytest.fixture
async def make_node(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    made: list[tuple[Node, AppServer, Store]] = []

    async def make(*, qps: int = 100, list_sweep: bool = False, cooldown: float = 3.0) -> Node:
        sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=0, seed=7))
        server = AppServer(sim.make_app())
        await server.start()
        path = tmp_path / "state.db"
        store = Store(path)
        db_clock = FakeClock(1_800_000_000.0)
        lease_store, other = Store(path), Store(path)
        for s in (lease_store, other):
            pin_db_clock(s, db_clock)
        steady = FakeClock(1000.0)
        keeper = LeaseKeeper(lease_store, "A", LeaseSettings(TTL), clock=steady)
        limiter = RateLimiter(LimiterSettings(qps), cooldown=cooldown)
        client = vendor_client(server.url, store, limiter, lease=keeper)
        poller = Poller(
            store, client, limiter, poller_settings(SETTINGS, SUBSCRIPTIONS, list_sweep=list_sweep)
        )
        node = Node(sim, store, limiter, client, poller, keeper, steady, db_clock, other)
        client.observer = lambda endpoint, label, _s: node.observed.append((endpoint, label))
        made.append((node, server, lease_store))
        return node

    yield make
    for node, server, lease_store in made:
        await node.client.aclose()
        for s in (node.store, lease_store, node.other):
            s.close()
        await server.stop()


async def polls_done() -> None:
    current = asyncio.current_task()
    polls = [t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")]
    await asyncio.gather(*(t for t in polls if t is not current))


async def test_no_call_leaves_once_the_lease_is_lost(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    node = await make_node(list_sweep=True)
    node.sim.add_job("gatejob01", queue_s=600, run_s=600)
    node.store.add_watches([WatchSpec("gatejob01")], "queue")
    await node.keeper.renew()
    await node.poller.tick()
    await polls_done()
    assert (node.calls(TOKEN_PATH), node.calls(DETAIL_PATH)) == (1, 1)
    await node.poller.sweep()
    assert node.calls(LIST_PATH) == 1

    node.lose_the_lease()
    await node.keeper.renew()
    assert not node.keeper.held
    before = node.watch("gatejob01")
    sweeps = dict(node.poller.sweep_results)
    node.observed.clear()
    node.store.record_poll_error("gatejob01", "made due again", 0.0)  # due at once
    before = node.watch("gatejob01")

    await node.poller.tick()  # a standby starts no poll
    assert node.poller.in_flight == 0
    await node.poller.sweep()  # nor a sweep
    (row,) = node.store.due_watches(2e9, 1)
    await node.poller._poll(row)  # a poll scheduled before the loss sends nothing
    with pytest.raises(LeaseLost):
        await node.client.detail("gatejob01")
    with pytest.raises(LeaseLost):
        await node.client.list_page(1, 100)

    assert (node.calls(TOKEN_PATH), node.calls(DETAIL_PATH), node.calls(LIST_PATH)) == (1, 1, 1)
    # Not a vendor failure: nothing observed (no error metric, no vendor.failing), the watch's
    # schedule and error count untouched, the sweep neither failed nor paused.
    assert node.observed == []
    assert node.watch("gatejob01") == before
    assert node.poller.sweep_results == sweeps
    assert not node.poller.sweep_state()["paused"]


async def test_a_frozen_node_sends_nothing_before_it_has_asked_the_database(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    """Polls that passed every check and wait for their turn at the limiter when the node
    freezes (SIGSTOP) past its deadline: as each turn comes, the last look (right before
    the request is written) holds it back, until the keeper has asked the database again."""
    node = await make_node(qps=4)
    jobs = [f"frozen{i:02d}" for i in range(4)]
    for job in jobs:
        node.sim.add_job(job, queue_s=600, run_s=600)
    node.store.add_watches([WatchSpec(j) for j in jobs], "queue")
    await node.keeper.renew()
    await node.client.token()
    node.limiter.throttle()  # as after a 40001: every caller waits out a pause (3 s here)

    await node.poller.tick()
    await until(lambda: node.limiter.waiting == 4)  # each passed the check before the limiter
    node.steady.advance(3600.0)  # frozen for an hour; thawed now
    await polls_done()
    assert node.calls(DETAIL_PATH) == 0
    assert node.keeper.withheld == 4
    for job in jobs:
        watch = node.watch(job)
        assert (watch["polls"], watch["errors"], watch["last_error"]) == (0, 0, None)
    assert [label for _endpoint, label in node.observed] == ["0"]  # the token call only

    # The keeper asks the database: nobody took the lease meanwhile, so it is ours again.
    await node.keeper.renew()
    assert node.keeper.may_call()
    await node.poller.tick()
    await polls_done()
    assert node.calls(DETAIL_PATH) == 4
    assert all(node.watch(j)["polls"] == 1 for j in jobs)


async def test_no_token_is_fetched_without_the_lease(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    node = await make_node()
    node.sim.add_job("tokenjob1", queue_s=600, run_s=600)
    with pytest.raises(LeaseLost):
        await node.client.detail("tokenjob1")  # never acquired
    assert node.sim.stats()["calls"] == 0
    assert node.keeper.withheld == 1
    await node.keeper.renew()
    await node.client.detail("tokenjob1")
    assert (node.calls(TOKEN_PATH), node.calls(DETAIL_PATH)) == (1, 1)
