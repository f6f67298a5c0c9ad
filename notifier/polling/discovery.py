"""Discovery (``watch.discover``): the list sweep makes watches of new jobs by itself.

A job is new when its ``create_time`` is at or after ``since`` and discovery never made a
watch of it before (nor was it ever watched: a finished or removed watch is not made again).
A round of sweeps starts at the newest page and reads down to the *covered mark*; once it
gets there, every job from that mark up to the newest one the round saw first has been
looked at, and the mark moves up to it (kept in the state, so a restart neither misses jobs
nor scans the account again). The mark is inclusive: jobs of its very second are looked at
again, and the store makes each one a watch once, whatever page it shows up on.

Each kind discovery covers (``watch.discover.kinds``) has its own list, round and mark.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from notifier.kinds import DEFAULT_KIND
from notifier.log import get_logger
from notifier.models import DEFAULT_ACCOUNT, JobDetail, job_id_problem
from notifier.store import Store

log = get_logger(component="discovery")


@dataclass(frozen=True)
class DiscoverySettings:
    """``watch.discover``."""

    #: Vendor seconds; jobs created before are never watched by discovery. None
    #: (``since: start``): when the state began, read from the state.
    since: float | None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: None: every endpoint subscribed to the event, as for a watch added without any.
    endpoints: tuple[str, ...] | None = None
    #: The kinds whose lists are read for new jobs (each must list by page).
    kinds: tuple[str, ...] = (DEFAULT_KIND,)


class Discoverer:
    """Turns what list pages show into watches, and keeps the covered mark."""

    def __init__(
        self, store: Store, settings: DiscoverySettings, account: str = DEFAULT_ACCOUNT
    ) -> None:
        """``account``: whose lists it reads (its watches, marks and tombstones)."""
        self.store = store
        self.account = account
        self.since = 0.0
        self.settings = settings
        self.configure(settings)
        #: Watches made since the daemon started (``chanjing_discovered_total``).
        self.discovered = 0
        #: Per kind: the newest create_time its current round saw on its first page.
        self._round_top: dict[str, int | None] = {}

    def configure(self, settings: DiscoverySettings) -> None:
        """At start and on each reload; the count of watches made is kept."""
        self.settings = settings
        since = settings.since
        if since is None:
            since = self.store.state_created_at() or self.store.now()
        self.since = float(since)

    def covers(self, kind: str) -> bool:
        return kind in self.settings.kinds

    def floor(self, kind: str) -> float:
        """The oldest create_time the current round of ``kind`` must reach down to. The
        vendor counts whole seconds: a job of the second ``since`` falls in counts as new
        (better an event for a job a moment older than none for a new one)."""
        return float(math.floor(self.store.discovery_covered(self.since, kind, self.account)))

    def start_round(self, kind: str, details: Sequence[JobDetail]) -> None:
        """The first page of a round: the mark may move up to its newest job at the end."""
        stamps = [d.create_time for d in details if d.create_time > 0]
        self._round_top[kind] = max(stamps) if stamps else None

    def finish_round(self, kind: str, floor: float) -> None:
        """The round read down to ``floor`` (or the list's end): everything up to its top
        has been seen. Once a round: later calls of the same round do nothing."""
        top = self._round_top.pop(kind, None)
        if top is not None and top > floor:
            self.store.advance_discovery(self.since, float(top), kind, self.account)

    def take(self, kind: str, details: Sequence[JobDetail], floor: float) -> set[str]:
        """Make watches of the page's new jobs; the ids made (the caller observes them from
        the same answer, so a job that already finished makes its event now)."""
        found: dict[str, int] = {}
        for detail in details:
            # create_time 0: the vendor did not say when, so it cannot be told new.
            if detail.create_time <= 0 or detail.create_time < floor:
                continue
            if job_id_problem(detail.id):
                log.debug("listed job id not watchable; skipped", job_id=detail.id)
                continue
            found[detail.id] = detail.create_time
        settings = self.settings
        made = self.store.discover(
            found, settings.labels, settings.endpoints, kind=kind, account=self.account
        )
        for job_id in made:
            log.debug("discovered job", kind=kind, job_id=job_id, create_time=found[job_id])
        self.discovered += len(made)
        return set(made)
