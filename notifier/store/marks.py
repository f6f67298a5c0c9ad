"""Marks of the state itself, by name (``state_marks``): when it was first created, and how
far back discovery (``watch.discover``) has covered the vendor's list."""

from __future__ import annotations

from notifier.kinds import DEFAULT_KIND
from notifier.store.base import CREATED_AT, StoreBase

#: The ``since`` the covered mark was reached for (another ``since`` starts over).
DISCOVERY_SINCE = "discovery_since"
#: Every job of the vendor's list created at or after this (vendor seconds) and at or
#: before it was seen as the newest has been looked at.
DISCOVERY_COVERED = "discovery_covered"


def _mark(name: str, kind: str) -> str:
    """Each kind's list has its own marks; lip-sync's keep their names of before kinds."""
    return name if kind == DEFAULT_KIND else f"{name}:{kind}"


class DiscoveryMarks(StoreBase):
    """The ``state_marks`` table (and the ``discovered`` rows the covered mark retires)."""

    def state_created_at(self) -> float | None:
        value = self._one("get_mark", CREATED_AT)
        return None if value is None else float(value)

    def discovery_covered(self, since: float, kind: str = DEFAULT_KIND) -> float:
        """Where discovery starts looking in ``kind``'s list: the covered mark if it was
        reached for this ``since``, else ``since`` itself."""
        if self._one("get_mark", _mark(DISCOVERY_SINCE, kind)) != since:
            return since
        value = self._one("get_mark", _mark(DISCOVERY_COVERED, kind))
        return since if value is None else max(since, float(value))

    def advance_discovery(self, since: float, covered: float, kind: str = DEFAULT_KIND) -> None:
        """A round of sweeps covered ``kind``'s list down to the old mark: its ids below the
        new one are never looked at again, so their rows go (other kinds' stay)."""
        with self.transaction():
            self._run("set_mark", {"name": _mark(DISCOVERY_SINCE, kind), "value": since})
            self._run("set_mark", {"name": _mark(DISCOVERY_COVERED, kind), "value": covered})
            self._run("prune_discovered", (kind, int(covered)))
