"""Each account's lease spread over the live nodes (issue 22, item 5), on the test PostgreSQL:
"nodes" here are processes' worth of keepers (one per account, one owner, one connection and
one presence row each) and their LeaseSpread, all on this loop with real clocks. Three nodes
and six accounts end at two leases each; one killed (no release) has its two moved to the
others, which then even out at three each; at no moment do two nodes hold one lease."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from notifier.polling.lease import LeaseKeeper, LeaseSettings, make_owner
from notifier.polling.spread import Census, LeaseSpread, share
from notifier.store import Store
from tests.kit import until

TTL = 3.0
ACCOUNTS = ["vendor"] + [f"vendor:a{i}" for i in range(1, 6)]
#: Bounded waits for a loaded 2-core machine; the failover time itself is measured in
#: bench/, not here.
WAIT = 30.0


class Node:
    def __init__(self, pg_url: str, name: str) -> None:
        self.name = name
        self.store = Store(pg_url)
        self.owner = make_owner(name)
        self.db = asyncio.Lock()
        self.keepers = [
            LeaseKeeper(
                self.store,
                name,
                LeaseSettings(TTL),
                name=lease,
                owner=self.owner,
                presence=i == 0,
                db=self.db,
            )
            for i, lease in enumerate(ACCOUNTS)
        ]
        self.spread = LeaseSpread(
            self.store, lambda: self.keepers, owner=self.owner, db=self.db, every=0.5
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for keeper in self.keepers:
            await keeper.start()
        for keeper in self.keepers:
            self.spread.attach(keeper)
        self._task = asyncio.create_task(self.spread.run(self._stop))

    def held(self) -> set[str]:
        return {k.name for k in self.keepers if k.may_call()}

    async def kill(self) -> None:
        """``kill -9``: every task stops where it is, nothing is released."""
        tasks = [t for t in [*(k._task for k in self.keepers), self._task] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for keeper in self.keepers:
            keeper.deadline = float("-inf")  # a dead process calls nothing

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*(k.release() for k in self.keepers))
        if self._task is not None:
            await self._task
        self.store.close()


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[Node]]:
    made = [Node(pg_url, f"node-{n}") for n in "abc"]
    yield made
    for node in made:
        if node._task is not None and not node._task.done():
            await node.stop()
        else:
            node.store.close()


async def watch_overlaps(nodes: list[Node], seen: list[str], stop: asyncio.Event) -> None:
    """Every 10 ms: a lease two nodes' gates would both let a call through."""
    while not stop.is_set():
        for lease in ACCOUNTS:
            holders = [n.name for n in nodes if lease in n.held()]
            if len(holders) > 1:
                seen.append(f"{lease}: {holders}")
        await asyncio.sleep(0.01)


async def test_six_accounts_spread_over_three_nodes_and_move_off_a_dead_one(
    nodes: list[Node],
) -> None:
    overlaps: list[str] = []
    done = asyncio.Event()
    watcher = asyncio.create_task(watch_overlaps(nodes, overlaps, done))
    a, b, c = nodes
    await a.start()
    await until(lambda: len(a.held()) == 6, WAIT)  # alone: every account's lease
    await b.start()
    await c.start()
    await until(lambda: [len(n.held()) for n in nodes] == [2, 2, 2], WAIT)
    # a gave up what it had over its share; a lease may move once more than needed while
    # the nodes' looks disagree on who is live (each looks every 0.5 s), never for long.
    assert a.spread.handed >= 4
    assert a.spread.handed + b.spread.handed + c.spread.handed <= 8

    gone = c.held()
    await c.kill()
    await until(lambda: gone <= a.held() | b.held(), WAIT)
    # c's presence runs out too: two live nodes, three each.
    await until(lambda: sorted(len(n.held()) for n in (a, b)) == [3, 3], WAIT)
    done.set()
    await watcher
    assert overlaps == []


def test_the_share_and_what_to_hand_over() -> None:
    names = {f"l{i}" for i in range(6)}
    alive = [("node:a", "A", 3.0), ("node:b", "B", 3.0)]
    census = [(f"l{i}", "A", 3.0) for i in range(6)] + alive
    assert share(6, 2) == 3 and share(7, 3) == 3 and share(6, 0) == 6
    a = Census.read(census, "A", names, fresh=2.0)
    assert (a.share, a.room, a.excess(6)) == (3, 3, 3)  # B holds none: A hands three over
    assert a.excess(3) == 0  # three already handed over (their rows still in holdoff)
    assert Census.read(census, "B", names, fresh=2.0).excess(0) == 0
    # Only as many as others have room for; a stale presence row (a dead node) or none
    # does not count as a live node.
    uneven = [(f"l{i}", "A" if i < 4 else "B", 3.0) for i in range(6)]
    assert Census.read(uneven + alive, "A", names, fresh=2.0).excess(4) == 1
    stale = [("node:a", "A", 3.0), ("node:b", "B", 1.0)]
    assert Census.read(uneven + stale, "A", names, fresh=2.0).excess(4) == 0
    assert Census.read(uneven + alive[:1], "A", names, fresh=2.0).excess(4) == 0
