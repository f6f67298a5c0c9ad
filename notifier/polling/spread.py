"""Several accounts on several nodes: each account's lease, spread over the live nodes.

Each account has a lease of its own (``vendor`` for the default account, ``vendor:NAME``
for the others), so each account's calls come from one node at a time, and N nodes can
share the accounts between them: that is the throughput beyond one host.

A free lease is taken at a node's next standby look, by a node with room for it first:
one at or above its share, ``ceil(accounts / live nodes)``, leaves a free lease to a node
below it, unless the lease stays free two looks in a row (the nodes with room are missing).
A node above its share hands the extra leases over while another live node has room, and
does not take them back for a while (:data:`~notifier.polling.lease.HAND_OVER_HOLD`)
unless nobody does. Live nodes are the processes whose presence row (``node:NAME``) was
renewed within the last renewal period, so a dead node stops counting before its leases
run out, and the others take those at once: a dead node's accounts move within
``state.lease`` plus a second. A node that joins holds nothing, so the others hand leases
over to it; the next looks even the counts out after any change.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from notifier.log import get_logger
from notifier.polling.lease import PRESENCE_PREFIX, STANDBY_EVERY, LeaseKeeper

log = get_logger(component="lease")


class CensusStore(Protocol):
    def lease_census(self) -> list[tuple[str, str, float]]: ...


#: Standby looks that found a lease free, after which a node takes it even above its share:
#: the nodes with room for it are missing (frozen, cut off from the database).
MISSING_AFTER = 2


def share(accounts: int, live_nodes: int) -> int:
    """The most leases one node holds when every live node takes its part."""
    return math.ceil(accounts / max(1, live_nodes))


@dataclass(frozen=True)
class Census:
    """Who holds which of the accounts' leases, among the live nodes, at one look."""

    #: This node's fair part: ceil(accounts / live nodes).
    share: int
    #: How many more leases the other live nodes would hold at their share.
    room: int

    @classmethod
    def read(
        cls, rows: Sequence[tuple[str, str, float]], owner: str, names: set[str], fresh: float
    ) -> Census:
        """``fresh``: the least a live node's presence row has left (a live node renews it
        at least every renewal period, so a dead one's falls below this before its leases
        run out)."""
        live = {o for n, o, left in rows if n.startswith(PRESENCE_PREFIX) and left >= fresh}
        live.add(owner)
        held = Counter(o for n, o, _left in rows if n in names)
        fair = share(len(names), len(live))
        return cls(fair, sum(max(0, fair - held[o]) for o in live if o != owner))

    def excess(self, holding: int) -> int:
        """Of the ``holding`` leases this node's gates hold (a lease it handed over stays its
        row until the release's holdoff ends), how many to hand over now: those above its
        share, as far as other live nodes have room."""
        return max(0, min(holding - self.share, self.room))


class LeaseSpread:
    """Looks at who holds what every ``every`` seconds; has this node's keepers hand over
    their extra leases (the last ones in configured order) and not take one more while
    another live node has room for it."""

    def __init__(
        self,
        store: CensusStore,
        keepers: Callable[[], Sequence[LeaseKeeper]],
        *,
        owner: str,
        db: asyncio.Lock,
        every: float,
    ) -> None:
        """``keepers``: this node's, one per account (a reload may change them); ``db``: the
        lock the keepers take around the shared connection ``store``."""
        self.store = store
        self.keepers = keepers
        self.owner = owner
        self._db = db
        self.every = every
        self.census: Census | None = None
        #: Leases this node handed over (/metrics).
        self.handed = 0

    def holding(self) -> list[LeaseKeeper]:
        return [k for k in self.keepers() if k.may_call()]

    def may_take(self, keeper: LeaseKeeper) -> bool:
        """Whether ``keeper`` takes its free lease now (the keepers ask before each take)."""
        census = self.census
        return (
            census is None
            or len(self.holding()) < census.share
            or census.room == 0
            or keeper.free_looks >= MISSING_AFTER
        )

    async def rebalance(self) -> int:
        """One look: the number of leases this node hands over now."""
        keepers = list(self.keepers())
        if len(keepers) < 2:
            self.census = None
            return 0  # one account: nothing to spread
        async with self._db:
            rows = await asyncio.to_thread(self.store.lease_census)
        first = keepers[0]
        fresh = first.ttl - first.renew_every - STANDBY_EVERY
        self.census = Census.read(rows, self.owner, {k.name for k in keepers}, fresh)
        mine = self.holding()
        count = self.census.excess(len(mine))
        chosen = mine[len(mine) - count :] if count else []
        for keeper in chosen:
            keeper.request_hand_over()
        if chosen:
            log.info(
                "handing vendor leases over to spread the accounts",
                leases=[k.name for k in chosen],
                holding=len(mine),
                share=self.census.share,
            )
        self.handed += len(chosen)
        return len(chosen)

    def attach(self, keeper: LeaseKeeper) -> None:
        """``keeper`` asks this spread before it takes its lease."""
        keeper.may_take = self.may_take

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; a look that fails (the database away) changes nothing."""
        while not stop.is_set():
            try:
                await self.rebalance()
            except Exception as exc:
                log.debug("cannot look at the leases' spread", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
