"""List sweeps, one per kind that has a list call: where each kind's round stands.

One list call sees up to a page of jobs where a detail call sees one, so every kind with a
list call is swept every ``min_interval``, within its share of the sweep budget (the poller
hands the shares out by where completions are expected: each kind's share of the active
watches). A kind listed by page (lip-sync, video, avatars, voices) is read newest first,
stopping past its oldest watched job; a kind listed by ids (AI creation) is asked about its
watched ids, a page of them per call, taking turns when they are more than its share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from notifier.kinds import Kind
from notifier.log import get_logger
from notifier.models import JobDetail
from notifier.polling.discovery import Discoverer
from notifier.polling.lease import LeaseLost
from notifier.polling.ratelimit import LimiterClosed
from notifier.polling.vendor import ListPage, ParameterRejected, VendorClient, VendorError
from notifier.store import Store

log = get_logger(component="poller")

#: Jobs per list call we ask for first; a vendor that refuses it (40000) or caps it gets
#: smaller pages, down to MIN_PAGE_SIZE.
PAGE_SIZE = 100
MIN_PAGE_SIZE = 10
#: After this long without a 40000 or a capped page, try pages twice as large (up to
#: PAGE_SIZE): one odd answer must not shrink sweeps for good.
PAGE_GROW_AFTER = 300.0
#: A page holding at least this share of watched jobs is productive: the sweep may spend
#: its larger budget on the next.
PRODUCTIVE_SHARE = 0.1
#: After a failed list call, a kind's sweeps wait this long, doubling with each failure in a
#: row up to SWEEP_RETRY_MAX (detail polls carry on meanwhile); a sweep that works resets it.
SWEEP_RETRY_FIRST = 2.0
SWEEP_RETRY_MAX = 60.0


class Host(Protocol):
    """What a sweep uses of the poller."""

    store: Store
    vendor: VendorClient
    #: Whose watches the sweep reads (its lane's account).
    account: str

    def clock(self) -> float: ...

    def observe_page(
        self, details: Sequence[JobDetail], covered_until: float, kind: Kind
    ) -> set[str]: ...


@dataclass(frozen=True)
class Budget:
    """List calls one sweep of a kind may make: ``pages``, or ``productive`` while its pages
    keep holding watched jobs."""

    pages: int
    productive: int


class _KindSweep:
    def __init__(self, kind: Kind, results: dict[str, int], clock: Callable[[], float]) -> None:
        self.kind = kind
        #: Sweeps by result, shared by every kind's sweep (the poller's counts).
        self.results = results
        self._clock = clock
        self.failures = 0
        self.paused_until = 0.0

    def paused(self) -> bool:
        return self._clock() < self.paused_until

    def _sweep_failed(self, exc: Exception, where: int) -> None:
        self.failures += 1
        wait = min(SWEEP_RETRY_MAX, SWEEP_RETRY_FIRST * 2.0 ** (self.failures - 1))
        self.paused_until = self._clock() + wait
        self.results["failed"] += 1
        log.warning(
            "list sweep failed; detail polls carry on",
            kind=self.kind.name,
            error=str(exc),
            retry_in=wait,
            failures=self.failures,
        )


class PageSweep(_KindSweep):
    """A kind listed by page: where its round stands, the page size the vendor takes."""

    def __init__(self, kind: Kind, results: dict[str, int], clock: Callable[[], float]) -> None:
        super().__init__(kind, results, clock)
        assert kind.listing is not None and kind.listing.by == "page"
        self.page_size = min(PAGE_SIZE, kind.listing.max_page_size)
        self._page_size_since = clock()
        #: Where the next sweep starts when the last one ran out of budget before reaching
        #: every watched job (a busy account): sweeps take turns over the pages.
        self._resume_page = 1
        #: Leading pages that held only jobs newer than any watched one (other
        #: applications' jobs on a busy account): a round of sweeps starts after them.
        self._skip_pages = 0
        #: Pages the last complete round read after the leading ones.
        self._round_pages = 0
        self.sweeps = 0

    async def run(
        self,
        host: Host,
        budget: Budget,
        active: int,
        interval: float,
        discovery: Discoverer | None = None,
    ) -> None:
        """Look at the newest jobs page by page, stopping once past the oldest watched one
        (and, with discovery, past the covered mark). A sweep that runs out of budget first
        (an account busy with other jobs) leaves the next one to start where it stopped, so
        consecutive sweeps reach every watched job."""
        max_pages, max_productive = budget.pages, budget.productive
        self._grow_page_size()
        productive = False
        where = {"kind": self.kind.name, "account": host.account}
        oldest = host.store.oldest_active_create_time(**where)
        newest = host.store.newest_active_create_time(**where)
        # Until the next sweep, detail polls of the jobs this one saw are not due (they may
        # still use spare budget).
        covered_until = host.clock() + 2 * interval
        seen = 0
        new_round = self._resume_page <= 1
        floor = 0.0
        made: set[str] = set()  # watches this sweep made
        if discovery is not None:
            # The leading pages are where new jobs are: a round starts at the newest.
            self._skip_pages = 0
            floor = discovery.floor(self.kind.name)
        page = first = self._skip_pages + 1 if new_round else self._resume_page
        fetches: dict[int, tuple[int, asyncio.Task[ListPage]]] = {}
        started = 0

        def fetch(n: int) -> None:
            nonlocal started
            if n not in fetches and started < (max_productive if productive else max_pages):
                started += 1
                call = host.vendor.list_page(n, self.page_size, self.kind)
                fetches[n] = (self.page_size, asyncio.create_task(call, name=f"list {n}"))

        try:
            fetch(page)
            while True:
                entry = fetches.pop(page, None)
                if entry is None:
                    self._sweep_done("partial", resume=page)
                    return
                if page + 1 <= self._skip_pages + self._round_pages:
                    # The last round needed the next page too: ask for it now, so list calls
                    # go back to back at the limiter instead of taking turns with detail polls.
                    fetch(page + 1)
                size, task = entry
                try:
                    answer = await task
                except (LimiterClosed, LeaseLost):
                    return  # not sent: not a failure; the sweep keeps its place
                except VendorError as exc:
                    self._list_failed(exc, page)
                    return
                if size != self.page_size:
                    fetch(page)  # asked for before the page size changed: ask again
                    continue
                if answer.received and answer.received < size and page < answer.pages:
                    # A full page came back short: the vendor caps the page size; follow it.
                    # Items that did not parse still count: they say nothing about the cap.
                    self.page_size = max(MIN_PAGE_SIZE, answer.received)
                    self._page_size_since = host.clock()
                    log.info("vendor caps the list page size", page_size=self.page_size)
                if discovery is not None:
                    if new_round and page == 1:
                        discovery.start_round(self.kind.name, answer.details)
                    made |= discovery.take(self.kind.name, answer.details, floor)
                watched = host.observe_page(answer.details, covered_until, self.kind)
                # Watches made by this sweep were not counted in ``active``.
                seen += len(watched - made)
                productive = len(watched) >= max(1, PRODUCTIVE_SHARE * self.page_size)
                # create_time 0 means the vendor did not say: it cannot tell us where we are.
                stamps = [d.create_time for d in answer.details if d.create_time > 0]
                if new_round and discovery is None:
                    self._note_leading_page(page, first, stamps, newest)
                watches_done = seen >= active or (
                    oldest is not None and stamps and min(stamps) < oldest
                )
                # Past the covered mark: the jobs after it are older ones.
                discovery_done = discovery is None or bool(stamps and min(stamps) < floor)
                if discovery is not None and discovery_done:
                    # Kept now, while the round may go on for older watched jobs.
                    discovery.finish_round(self.kind.name, floor)
                if not answer.received or page >= answer.pages or (watches_done and discovery_done):
                    # What the next round, starting after the leading pages, will need.
                    self._round_pages = page - self._skip_pages
                    if discovery is not None:
                        discovery.finish_round(self.kind.name, floor)
                    self._sweep_done("ok", resume=1)
                    return
                page += 1
                fetch(page)
        finally:
            if made:
                log.info("discovered jobs", count=len(made), pages=started)
            for _size, task in fetches.values():
                task.cancel()
            await asyncio.gather(
                *(task for _size, task in fetches.values()), return_exceptions=True
            )

    def _list_failed(self, exc: VendorError, page: int) -> None:
        if isinstance(exc, ParameterRejected) and self.page_size > MIN_PAGE_SIZE:
            self._page_size_since = self._clock()
            self.page_size = max(MIN_PAGE_SIZE, self.page_size // 2)
            log.info(
                "vendor refused the page size; asking for less",
                page_size=self.page_size,
                error=str(exc),
            )
            self.results["refused"] += 1
            self._resume_page = 1  # page numbers of the old size mean nothing now
            return  # the next sweep uses the smaller pages
        self._sweep_failed(exc, page)

    def _note_leading_page(
        self, page: int, first: int, stamps: list[int], newest: int | None
    ) -> None:
        """Learn how many leading pages hold only jobs newer than every watched one.

        Called for each page a round reads, in order from its first. Pages of only newer
        jobs from the start move the next round's start past them. A round whose first
        page holds nothing as new as the newest watched job started too deep (jobs
        deleted, watches added): the next one starts a page earlier.
        """
        if newest is None or not stamps:
            if page == first:
                self._skip_pages = 0
        elif min(stamps) > newest:
            if page == first or self._skip_pages == page - 1:
                self._skip_pages = page
        elif page == first and first > 1 and max(stamps) < newest:
            self._skip_pages = first - 2

    def _sweep_done(self, result: str, *, resume: int) -> None:
        self._resume_page = resume
        self.failures = 0
        self.sweeps += 1
        self.results[result] += 1

    def _grow_page_size(self) -> None:
        now = self._clock()
        if self.page_size < PAGE_SIZE and now - self._page_size_since >= PAGE_GROW_AFTER:
            self.page_size = min(PAGE_SIZE, self.page_size * 2)
            self._page_size_since = now
            self._resume_page = 1
            log.info("trying larger list pages", page_size=self.page_size)

    def _sweep_failed(self, exc: Exception, where: int) -> None:
        self._resume_page = where
        super()._sweep_failed(exc, where)


class IdSweep(_KindSweep):
    """A kind listed by ids (AI creation): its active watches' ids, a page of them per call,
    in id order; a sweep out of budget leaves the next to go on from the last id it asked."""

    def __init__(self, kind: Kind, results: dict[str, int], clock: Callable[[], float]) -> None:
        super().__init__(kind, results, clock)
        assert kind.listing is not None and kind.listing.by == "ids"
        self.page_size = kind.listing.max_page_size
        self._after = ""
        self.sweeps = 0

    async def run(
        self,
        host: Host,
        budget: Budget,
        active: int,
        interval: float,
        discovery: Discoverer | None = None,
    ) -> None:
        covered_until = host.clock() + 2 * interval
        calls = 0
        while True:
            if calls >= budget.pages:
                self._done("partial")
                return
            ids = host.store.active_ids(
                self.kind.name, self.page_size, self._after, account=host.account
            )
            if not ids and self._after:
                self._after = ""  # the round went past the last id: start it again
                continue
            if not ids:
                self._done("ok")
                return
            calls += 1
            try:
                answer = await host.vendor.list_ids(ids, self.kind)
            except (LimiterClosed, LeaseLost):
                return  # not sent: the sweep keeps its place
            except VendorError as exc:
                self._sweep_failed(exc, 0)
                return
            host.observe_page(answer.details, covered_until, self.kind)
            self._after = ids[-1]
            if len(ids) < self.page_size:
                self._after = ""
                self._done("ok")
                return

    def _done(self, result: str) -> None:
        self.failures = 0
        self.sweeps += 1
        self.results[result] += 1
