"""Marks of the state itself, by name (``state_marks``): when it was first created, and how
far back discovery (``watch.discover``) has covered the vendor's list."""

from __future__ import annotations

from notifier.store.base import CREATED_AT, StoreBase

#: The ``since`` the covered mark was reached for (another ``since`` starts over).
DISCOVERY_SINCE = "discovery_since"
#: Every job of the vendor's list created at or after this (vendor seconds) and at or
#: before it was seen as the newest has been looked at.
DISCOVERY_COVERED = "discovery_covered"


class DiscoveryMarks(StoreBase):
    """The ``state_marks`` table (and the ``discovered`` rows the covered mark retires)."""

    def state_created_at(self) -> float | None:
        value = self._one("get_mark", CREATED_AT)
        return None if value is None else float(value)

    def discovery_covered(self, since: float) -> float:
        """Where discovery starts looking: the covered mark if it was reached for this
        ``since``, else ``since`` itself."""
        if self._one("get_mark", DISCOVERY_SINCE) != since:
            return since
        value = self._one("get_mark", DISCOVERY_COVERED)
        return since if value is None else max(since, float(value))

    def advance_discovery(self, since: float, covered: float) -> None:
        """A round of sweeps covered the list down to the old mark: ids below the new one
        are never looked at again, so their rows go."""
        with self.transaction():
            self._run("set_mark", {"name": DISCOVERY_SINCE, "value": since})
            self._run("set_mark", {"name": DISCOVERY_COVERED, "value": covered})
            self._run("prune_discovered", (int(covered),))
