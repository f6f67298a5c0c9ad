"""The state: one :class:`Store`, the parts of the store composed on one backend.

``Store(location)`` opens the backend the location names (a file path is SQLite, a
``postgresql://`` URL is PostgreSQL: :func:`~notifier.store.base.open_backend`); its
methods are those of its parts, each the owner of its tables: :class:`Watches` (watches,
the intake queue, watch-file listings, discovered ids), :class:`Deliveries` (events,
deliveries, claims, attempts), :class:`VendorLease` (lease, vendor token, gateway keys),
:class:`DiscoveryMarks` (marks of the state) and :class:`Listings` (what operators read).
What spans them (retention, a clock step, the live counts) is here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from notifier.store.base import PRUNE_BATCH
from notifier.store.deliveries import Deliveries
from notifier.store.lease import VendorLease
from notifier.store.listings import Listings
from notifier.store.marks import DiscoveryMarks
from notifier.store.watches import Watches

if TYPE_CHECKING:
    from notifier.store.postgres_listen import ChangeFeed


class Store(Watches, Deliveries, VendorLease, DiscoveryMarks, Listings):
    """A connection to the state. Not thread-safe: one per thread or process.

    ``Store(location, clock=, busy_timeout=, create=)``: see
    :class:`~notifier.store.base.StoreBase` (and :func:`notifier.store.open_store`).
    """

    def shift_schedule(self, delta: float) -> None:
        """Move every pending poll, delivery and expiry by ``delta`` seconds: the system
        clock stepped, and what was due in a minute is still due in a minute (SQLite only)."""
        with self.transaction():
            self._run("shift_watch_schedule", {"delta": delta})
            self._run("shift_delivery_schedule", {"delta": delta})

    def prune(self, cutoff: float, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Forget one batch of history older than ``cutoff`` (``state.retention``): events
        whose deliveries are all settled (with their deliveries and attempts), finished
        watches (and ids discovery must not make again), rejected queue rows. Each kind in
        its own short transaction, so a long history is pruned a little at every
        housekeeping tick without stalling anything."""
        args = {"cutoff": cutoff, "batch": batch}
        with self.transaction():
            ids = [row[0] for row in self._run("old_settled_events", args)]
            if ids:
                listed = json.dumps(ids)
                self._run("prune_attempts", {"ids": listed})
                self._run("prune_deliveries", {"ids": listed})
                self._run("prune_events", {"ids": listed})
        with self.transaction():
            watches = self._run("prune_watches", args).rowcount
            self._run("prune_discovered_before", args)
        with self.transaction():
            rejected = self._run("prune_rejected", args).rowcount
        return {"events": len(ids), "watches": int(watches), "rejected": int(rejected)}

    def live_counts(self, account: str | None = None) -> tuple[int, int]:
        """(active watches, of ``account`` or all; pending deliveries): two index range
        counts, cheap enough to run every few seconds whatever the size of the history."""
        active = (
            self._one("count_active") if account is None else self._one("count_active_of", account)
        )
        return int(active), int(self._one("count_pending_deliveries"))

    def unconfigured_accounts(self, configured: Iterable[str]) -> dict[str, int]:
        """{account: active watches} of the accounts with active watches that are not
        ``configured`` (removed from the config: their watches wait until it returns); one
        index seek per account, cheap enough for every status line."""
        known = set(configured)
        found = [str(row[0]) for row in self._run("active_accounts")]
        return {a: int(self._one("count_active_of", a)) for a in found if a not in known}

    # -- wake-ups -------------------------------------------------------------------------

    def change_feed(self) -> ChangeFeed | None:
        """Notifications of what other sessions write (PostgreSQL); None for SQLite, whose
        single daemon notices other programs' writes at its ticks."""
        return self.backend.change_feed()

    def session_id(self) -> int | None:
        """The database's id of this connection as notifications name it (None: no such)."""
        return self.backend.session_id()
