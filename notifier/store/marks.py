"""Marks of the state itself, by name (``state_marks``): when it was first created, and how
far back discovery (``watch.discover``) has covered the vendor's list."""

from __future__ import annotations

from notifier.kinds import DEFAULT_KIND
from notifier.models import DEFAULT_ACCOUNT
from notifier.store.base import CREATED_AT, StoreBase

#: The ``since`` the covered mark was reached for (another ``since`` starts over).
DISCOVERY_SINCE = "discovery_since"
#: Every job of the vendor's list created at or after this (vendor seconds) and at or
#: before it was seen as the newest has been looked at.
DISCOVERY_COVERED = "discovery_covered"


def _mark(name: str, kind: str, account: str) -> str:
    """Each account's list of each kind has its own marks; the default account's keep their
    names of before accounts, and its lip-sync ones those of before kinds."""
    named = name if kind == DEFAULT_KIND else f"{name}:{kind}"
    return named if account == DEFAULT_ACCOUNT else f"{named}@{account}"


class DiscoveryMarks(StoreBase):
    """The ``state_marks`` table (and the ``discovered`` rows the covered mark retires)."""

    def state_created_at(self) -> float | None:
        value = self._one("get_mark", CREATED_AT)
        return None if value is None else float(value)

    def discovery_covered(
        self, since: float, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> float:
        """Where discovery starts looking in ``account``'s list of ``kind``: the covered mark
        if it was reached for this ``since``, else ``since`` itself."""
        if self._one("get_mark", _mark(DISCOVERY_SINCE, kind, account)) != since:
            return since
        value = self._one("get_mark", _mark(DISCOVERY_COVERED, kind, account))
        return since if value is None else max(since, float(value))

    def advance_discovery(
        self,
        since: float,
        covered: float,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        """A round of sweeps covered ``account``'s list of ``kind`` down to the old mark: its
        ids below the new one are never looked at again, so their rows go (other kinds' and
        accounts' stay)."""
        with self.transaction():
            since_mark = _mark(DISCOVERY_SINCE, kind, account)
            self._run("set_mark", {"name": since_mark, "value": since})
            covered_mark = _mark(DISCOVERY_COVERED, kind, account)
            self._run("set_mark", {"name": covered_mark, "value": covered})
            self._run("prune_discovered", (account, kind, int(covered)))
