"""Discovery's part of the state (``watch.discover``): when the state was first created,
how far back the list sweep has covered the vendor's list, and the ids it must not make a
watch of again. Shared by both backends through the named queries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from notifier.models import WatchSpec
from notifier.store._mixin import StorePart
from notifier.watchspec import watch_specs

#: What the migration that adds marks says: the first mark is written when it is applied.
CREATES_MARKS = "CREATE TABLE state_marks"
#: The mark written once, when the state is first created (or first opened by a program
#: that knows marks): ``since: start``.
CREATED_AT = "created_at"
#: The ``since`` the covered mark was reached for (another ``since`` starts over).
DISCOVERY_SINCE = "discovery_since"
#: Every job of the vendor's list created at or after this (vendor seconds) and at or
#: before it was seen as the newest has been looked at.
DISCOVERY_COVERED = "discovery_covered"


class DiscoveryMarks(StorePart):
    """Discovery's queries of :class:`~notifier.store.base.Store`, kept apart for size."""

    def add_watches(self, specs: Sequence[WatchSpec], source: str) -> tuple[int, int]:
        raise NotImplementedError

    def _note_created(self) -> None:
        """Called once the migrations ran: the first time, this is when the state began."""
        with self.transaction():
            self._run("add_mark", {"name": CREATED_AT, "value": self.now()})

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

    def discover(
        self,
        found: Mapping[str, int],
        labels: Mapping[str, str],
        endpoints: Sequence[str] | None,
    ) -> list[str]:
        """Make watches of the ``found`` ids ({id: create_time}) that never were one (nor
        were discovered before); the ids made, in the order given. Idempotent: a job seen
        twice (pages shifting) is made once."""
        if not found:
            return []
        ids = json.dumps(list(found))
        with self.transaction():
            known = {row[0] for row in self._run("discovered_among", (ids, ids))}
            new = [job_id for job_id in found if job_id not in known]
            now = self.now()
            for job_id in new:
                self._run("add_discovered", (job_id, found[job_id], now))
            specs = watch_specs(new, dict(labels), None if endpoints is None else list(endpoints))
            self.add_watches(specs, "discovery")
        return new
