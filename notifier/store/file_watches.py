"""The watch files' part of the state: which file-sourced ids each node's file lists.

With several nodes on one state each node's watch file is that node's *listing*: a sync
replaces only its own listing, and an active file-sourced watch is removed only when no
node's listing has it any more, so a node with an older copy of the file cannot delete the
watches of the others. A node keeps its listing alive (each watch-file tick); a listing not
kept for :data:`LISTING_TTL` (the node is gone, or restarted under a new ``hostname:pid``)
is dropped by another node's next sync. One daemon on the state (SQLite) passes no node: its
file is the only listing, as before listings.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifier.models import WatchSpec
from notifier.store._mixin import StorePart

#: A node's watch-file listing not kept for this long is dropped by another node's next sync
#: (its ids stay watched until then): the node is gone, or restarted under a new name.
LISTING_TTL = 300.0


class FileWatches(StorePart):
    """The watch file's queries of :class:`~notifier.store.base.Store`, kept apart for size."""

    def add_watches(self, specs: Sequence[WatchSpec], source: str) -> tuple[int, int]:
        raise NotImplementedError

    def sync_file_watches(
        self, specs: Sequence[WatchSpec], node: str | None = None
    ) -> tuple[int, int, int]:
        """Take a watch file's ``specs``: (added, updated, removed).

        ``node`` None: the one daemon on the state (SQLite): the active file-sourced watches
        become equal to ``specs``. With ``node`` (several nodes share the state): the file is
        that node's listing; the sync replaces only its own listing, and removes an active
        file-sourced watch only when no node's listing has it any more (a node with an older
        copy of the file must not delete the watches of the others). Listings of nodes not
        seen for :data:`LISTING_TTL` (gone, or restarted under a new ``hostname:pid``) are
        dropped first.
        """
        wanted = {spec.job_id for spec in specs}
        now = self.now()
        with self.transaction():
            added, updated = self.add_watches(specs, "file")
            if node is None:
                self._run("file_listings_clear")
                self._run("file_listers_clear")
                stale = [row[0] for row in self._run("file_watch_ids") if row[0] not in wanted]
            else:
                self._run("file_lister_seen", {"node": node, "now": now})
                cutoff = {"cutoff": now - LISTING_TTL}
                self._run("file_listings_drop_stale", cutoff)
                self._run("file_listers_drop_stale", cutoff)
                listed = {row[0] for row in self._run("file_listing_ids", {"node": node})}
                for job_id in sorted(listed - wanted):
                    self._run("file_listing_remove", {"node": node, "job_id": job_id})
                for job_id in sorted(wanted - listed):
                    self._run("file_listing_add", {"node": node, "job_id": job_id})
                stale = [row[0] for row in self._run("file_watch_ids_unlisted")]
            for job_id in stale:
                self._run("delete_watch", (job_id,))
        return added, updated, len(stale)

    def keep_file_listing(self, node: str) -> bool:
        """This node is still here: its listing stays (see :meth:`sync_file_watches`). False
        when it has none any more (another node dropped it as stale: sync again)."""
        with self.transaction():
            cursor = self._run("file_lister_touch", {"node": node, "now": self.now()})
            return bool(cursor.rowcount)
