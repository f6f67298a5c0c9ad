"""A whole-guest pause (``virsh suspend``, a long live migration) stops the node's steady
clock too, so its lease deadline does not see the pause (issue 19, item 12). Two keepers on
two connections to the test PostgreSQL (its clock is the real one); node A's steady clock is
a FakeClock that stands still, and while A is "paused" its loop does not run either (a
paused guest runs nothing). On resume, A must find out from the database's clock, at its
first look, not at its next renewal (a third of the lease later)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from notifier.polling.lease import MARGIN, LeaseKeeper, LeaseSettings
from notifier.store import Store
from tests.kit import FakeClock, until

#: The paused node's steady clock reads this throughout.
FROZEN = 1000.0
PAUSED = "this node was paused"


@pytest.fixture
def stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    a, b = Store(pg_url), Store(pg_url)
    yield a, b
    a.close()
    b.close()


async def resume(keeper: LeaseKeeper) -> asyncio.Task[None]:
    """The guest runs again: the keeper's loop goes on where it stood (between two looks)."""
    return asyncio.create_task(keeper.run(first=False))


async def stop(task: asyncio.Task[None], *keepers: LeaseKeeper) -> None:
    for keeper in keepers:
        keeper.close()
    await asyncio.wait_for(task, 5)


async def test_a_node_resumed_after_another_took_its_lease_shuts_its_gate_at_once(
    stores: tuple[Store, Store],
) -> None:
    """A 30 s lease (renewals 10 s apart): the takeover is seen within the first probe."""
    a = LeaseKeeper(stores[0], "node-a", LeaseSettings(30.0), clock=FakeClock(FROZEN))
    await a.renew()
    assert a.may_call()
    # Paused long enough for A's lease to run out; B took it (sole: without waiting it out).
    b = LeaseKeeper(stores[1], "node-b", LeaseSettings(30.0), sole=True)
    await b.renew()
    assert b.may_call()
    assert a.may_call()  # A's own clock saw nothing
    task = await resume(a)
    try:
        await until(lambda: not a.may_call(), timeout=3.0)  # not 10 s: the next renewal
        assert a.holder == "node-b"
    finally:
        await stop(task, a)


async def test_a_pause_is_measured_against_the_databases_clock(
    stores: tuple[Store, Store],
) -> None:
    """Nobody took the lease, but the database's clock ran on while A's stood still: A's
    deadline moves nearer by the pause, A logs it, and renews at once."""
    a = LeaseKeeper(stores[0], "node-a", LeaseSettings(3.0), clock=FakeClock(FROZEN))
    await a.renew()
    assert a.deadline == FROZEN + 3.0
    # Paused: wait (on the database's clock) until less than MARGIN of the lease is left.
    while True:
        holder = stores[1].lease_holder("vendor")
        assert holder is not None and holder[0] == "node-a"
        if holder[1] < MARGIN - 0.2:
            break
        await asyncio.sleep(0.05)
    assert a.may_call()  # its steady clock says 3 s left
    with capture_logs() as logs:
        task = await resume(a)
        try:
            await until(lambda: any(e["event"].startswith(PAUSED) for e in logs), timeout=3.0)
            await until(lambda: a.changes["acquired"] >= 2, timeout=3.0)
        finally:
            await stop(task, a)
    paused = next(e for e in logs if e["event"].startswith(PAUSED))
    assert paused["log_level"] == "warning" and paused["node"] == "node-a"
    assert paused["paused_seconds"] >= 1.0
    # Its gate shut (less than MARGIN was left), then the renewal made at once took it again.
    assert a.changes["lost"] >= 1
