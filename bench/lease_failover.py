"""Vendor lease failover: how long until a standby holds the lease after the holder is gone.

Two of the daemon's own lease keepers (``notifier.polling.lease``) on one state file, with the
real clocks (the database's and this host's steady one), the standby trying every second:

* **kill -9**: the holder stops renewing and releases nothing, at a random point of its renewal
  cycle; measured from the kill to the standby holding the lease. Bound: ``state.lease`` + 1 s.
* **clean stop**: the holder shuts its gate, its last calls end, and it releases; measured from
  the start of the stop. Bound: MARGIN (2 s) + 1 s (the standby's next try).

SQLite admits one daemon per file (its instance lock), so the keepers run in one process here;
on a shared PostgreSQL the same keepers run in two daemons. Run: ``python -m bench.lease_failover
--lease 10 --trials 5`` (about ``trials × (lease + 4)`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from notifier import log as logs
from notifier.polling.lease import MARGIN, STANDBY_EVERY, LeaseKeeper
from notifier.store import Store


async def _held(keeper: LeaseKeeper, since: float) -> float:
    while not keeper.held:
        await asyncio.sleep(0.005)
    return time.monotonic() - since


async def trial(path: Path, ttl: float, clean: bool, rng: random.Random) -> float:
    stores = [Store(path, busy_timeout=1.0) for _ in range(2)]
    holder = LeaseKeeper(stores[0], "holder", ttl)
    standby = LeaseKeeper(stores[1], "standby", ttl)
    try:
        await holder.start()
        await standby.start()
        assert holder.held and not standby.held
        await asyncio.sleep(rng.uniform(0, holder.renew_every))  # anywhere in the cycle
        gone = time.monotonic()
        if clean:
            holder.close()
            await holder.release()
        else:
            holder._stopping.set()  # kill -9: no more renewals, no release
        took = await _held(standby, gone)
        standby.close()
        await standby.release()
        return took
    finally:
        holder.close()
        for store in stores:
            store.close()


async def main(ttl: float, trials: int, seed: int) -> None:
    logs.configure("error")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for clean, bound in ((False, ttl + STANDBY_EVERY), (True, MARGIN + STANDBY_EVERY)):
            times = [
                await trial(Path(tmp) / f"{clean}{i}.db", ttl, clean, rng) for i in range(trials)
            ]
            name = "clean stop" if clean else "kill -9"
            print(
                f"lease {ttl:g}s, {name:>10}: standby holds it after "
                f"max {max(times):.2f}s, mean {statistics.mean(times):.2f}s "
                f"over {trials} trials (bound {bound:g}s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=10.0, help="state.lease, seconds")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.lease, args.trials, args.seed))
