"""Asks the vendor about watched jobs and turns the answers into state (and events).

Two ways to look: a detail call per job, planned by the polling policy, and a list sweep
that sees up to a page of the account's newest jobs per call. With many jobs the sweep is
far cheaper; jobs it covers are left out of detail polling while it keeps covering them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from notifier import kinds
from notifier._tasks import settle
from notifier.delivery.transition import build_event, route
from notifier.kinds import Phase
from notifier.log import get_logger
from notifier.models import JobDetail
from notifier.polling.discovery import Discoverer, DiscoverySettings
from notifier.polling.lease import LeaseLost
from notifier.polling.policy import PollingSettings, plan_after_poll, retry_delay
from notifier.polling.ratelimit import LimiterClosed, RateLimiter
from notifier.polling.vendor import (
    CredentialsRejected,
    ListPage,
    ParameterRejected,
    UnknownJob,
    VendorClient,
    VendorError,
)
from notifier.store import DB_ERRORS, Store, StoreUnavailable, WatchRow

log = get_logger(component="poller")

#: Keep about this many seconds of budget queued at the limiter, so it never runs dry
#: between ticks, while the choice of *which* job to poll stays fresh.
LOOKAHEAD_SECONDS = 1.0
#: Jobs per list call we ask for first; a vendor that refuses it (40000) or caps it gets
#: smaller pages, down to MIN_PAGE_SIZE.
PAGE_SIZE = 100
MIN_PAGE_SIZE = 10
#: After this long without a 40000 or a capped page, try pages twice as large (up to
#: PAGE_SIZE): one odd answer must not shrink sweeps for good.
PAGE_GROW_AFTER = 300.0
#: A sweep may spend at most this share of the budget of one sweep interval…
SWEEP_BUDGET_SHARE = 0.5
#: …or up to this share while its pages keep holding watched jobs (at least
#: PRODUCTIVE_SHARE of a page): such a call sees many jobs, a detail call one.
SWEEP_BUDGET_SHARE_PRODUCTIVE = 0.8
PRODUCTIVE_SHARE = 0.1
#: After a failed list call, sweeps wait this long, doubling with each failure in a row up to
#: SWEEP_RETRY_MAX (detail polls carry on meanwhile); a sweep that works resets it.
SWEEP_RETRY_FIRST = 2.0
#: Sweeps asked for early (:meth:`Poller.sweep_soon`) start at most once per this share of
#: ``min_interval`` (the scheduled ones come every min_interval), and a second apart at least.
SWEEP_SOON_SHARE = 0.5
SWEEP_RETRY_MAX = 60.0
#: A 40000 for a job id gives its watch up (``rejected``, with a ``lip_sync.rejected`` event)
#: only after this many, spread over at least
#: REJECT_WINDOW seconds (a vendor may not know a job for a moment after creating it).
REJECT_LIMIT = 3
REJECT_WINDOW = 120.0
#: The second look at a rejected id comes this soon; the third REJECT_WINDOW after the first.
REJECT_RETRY = 5.0


#: Who gets which event: (endpoint name, its event types), in the config's order.
Subscriptions = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class PollerSettings:
    """What the poller takes of the config (``polling``, the endpoints' events,
    ``watch.discover``)."""

    polling: PollingSettings
    subscriptions: Subscriptions
    list_sweep: bool = True
    #: None: discovery off.
    discovery: DiscoverySettings | None = None


class Poller:
    def __init__(
        self,
        store: Store,
        vendor: VendorClient,
        limiter: RateLimiter,
        settings: PollingSettings,
        subscriptions: Sequence[tuple[str, Sequence[str]]],
        *,
        list_sweep: bool = True,
        discovery: Discoverer | None = None,
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vendor = vendor
        self.limiter = limiter
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.list_sweep = list_sweep
        #: ``watch.discover``: sweeps also make watches of new jobs (None: off).
        self.discovery = discovery
        self._on_event = on_event
        self._clock = clock
        self._rng = random.Random()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._sweep_paused_until = 0.0
        #: The sweep under way (the scheduled one or one asked for early), and when the
        #: last one started (monotonic).
        self._sweeping: asyncio.Task[None] | None = None
        self._swept_at = -math.inf
        self._sweep_failures = 0
        self._page_size_since = clock()
        #: Where the next sweep starts when the last one ran out of budget before reaching
        #: every watched job (a busy account): sweeps take turns over the pages.
        self._resume_page = 1
        #: Leading pages that held only jobs newer than any watched one (other
        #: applications' jobs on a busy account): a round of sweeps starts after them.
        self._skip_pages = 0
        #: Pages the last complete round read after the leading ones.
        self._round_pages = 0
        self.page_size = PAGE_SIZE
        self.sweeps = 0
        #: Sweeps by result: ok (every page it needed), partial (out of budget: the next one
        #: resumes), refused (page size rejected), failed (list call failed).
        self.sweep_results: dict[str, int] = {"ok": 0, "partial": 0, "refused": 0, "failed": 0}
        self.events = 0

    def configure(self, settings: PollerSettings) -> None:
        """A reload: new timings and routing from the next decision on; discovery keeps the
        count of watches it made (a new :class:`Discoverer` when it was off)."""
        self.settings = settings.polling
        self.subscriptions = list(settings.subscriptions)
        self.list_sweep = settings.list_sweep
        if settings.discovery is None:
            self.discovery = None
        elif self.discovery is None:
            self.discovery = Discoverer(self.store, settings.discovery)
        else:
            self.discovery.configure(settings.discovery)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- detail polls ---------------------------------------------------------------------

    async def tick(self) -> None:
        """Start polls: due ones first (most overdue first), then early ones if budget is
        spare, up to about a second of budget ahead."""
        want = max(1, int(self.limiter.qps * LOOKAHEAD_SECONDS)) - len(self._in_flight)
        if want <= 0 or not self.vendor.may_call():
            return  # a standby node: the vendor lease holder polls
        now = self._clock()
        busy = frozenset(self._in_flight)
        chosen = self.store.due_watches(now, want, busy)
        if len(chosen) < want:
            busy = busy | {w.job_id for w in chosen}
            chosen += self.store.early_watches(now, want - len(chosen), busy)
        for watch in chosen:
            task = asyncio.create_task(self._poll_quietly(watch), name=f"poll {watch.job_id}")
            self._in_flight[watch.job_id] = task
            task.add_done_callback(self._forget)

    def polling(self, job_id: str) -> bool:
        """Whether a detail poll of ``job_id`` is on its way."""
        return job_id in self._in_flight

    def poll_now(self, watch: WatchRow) -> bool:
        """Poll ``watch`` at once, ahead of ordinary calls at the limiter (a vendor callback
        said it may have finished). False when a poll of it is on its way already."""
        if watch.job_id in self._in_flight:
            return False
        poll = self._poll_quietly(watch, priority=True)
        task = asyncio.create_task(poll, name=f"poll {watch.job_id}")
        self._in_flight[watch.job_id] = task
        task.add_done_callback(self._forget)
        return True

    async def probe(self, job_id: str, kind: str = kinds.DEFAULT_KIND) -> JobDetail | None:
        """One priority detail call for an id with no watch (a vendor callback named it):
        what the vendor says of it, or None when it does not know it (40000). Nothing is
        recorded; other failures raise as :meth:`VendorClient.detail` raises them."""
        try:
            return await self.vendor.detail(job_id, priority=True, kind=kinds.get(kind))
        except UnknownJob:
            return None

    def _forget(self, task: asyncio.Task[None]) -> None:
        job_id = task.get_name().removeprefix("poll ")
        if self._in_flight.get(job_id) is task:
            del self._in_flight[job_id]

    async def _poll_quietly(self, watch: WatchRow, *, priority: bool = False) -> None:
        """A poll whose outcome cannot be stored changes nothing: the watch stays due, and
        the daemon reports the state file's trouble (once, not per poll)."""
        with contextlib.suppress(StoreUnavailable):
            await self._poll(watch, priority=priority)

    async def _poll(self, watch: WatchRow, *, priority: bool = False) -> None:
        job_log = log.bind(job_id=watch.job_id)
        try:
            kind = kinds.get(watch.kind)
            if priority:
                detail = await self.vendor.detail(watch.job_id, priority=True, kind=kind)
            else:
                detail = await self.vendor.detail(watch.job_id, kind=kind)
        except (LimiterClosed, LeaseLost):
            # Shutting down, or the vendor lease is gone, before the call went out: nothing
            # happened, so nothing is recorded (the watch stays due for the lease holder).
            return
        except UnknownJob as exc:
            self._rejected(watch, str(exc))
            return
        except CredentialsRejected as exc:
            self._retry_later(watch, str(exc))
            job_log.error(
                "vendor rejected our credentials",
                error=str(exc),
                hint="check chanjing.app_id / chanjing.secret_key",
            )
            return
        except VendorError as exc:
            delay = self._retry_later(watch, str(exc))
            job_log.warning(
                "poll failed; will retry",
                error=str(exc),
                retry_in=round(delay, 1),
                errors=watch.errors + 1,
            )
            return
        except (asyncio.CancelledError, StoreUnavailable):
            raise
        except Exception as exc:  # a bug must not stop the other jobs
            self._retry_later(watch, f"internal error: {type(exc).__name__}")
            job_log.exception("poll crashed; will retry")
            return
        try:
            self.observe(watch, detail)
        except StoreUnavailable:
            raise
        except Exception as exc:
            # This watch alone backs off, as after a failed poll: left due, it would be
            # polled again every tick and take the budget from every other job.
            delay = self._retry_later(watch, f"internal error: {type(exc).__name__}")
            job_log.exception("could not record the poll; will retry", retry_in=round(delay, 1))

    def _rejected(self, watch: WatchRow, vendor_msg: str) -> None:
        """A 40000 for the id: give the watch up, with its ``lip_sync.rejected`` event, only
        once it keeps coming over minutes."""
        now = self._clock()
        seen = self.store.record_rejection(
            watch.job_id, vendor_msg, now + REJECT_RETRY, REJECT_WINDOW
        )
        if seen is None:
            return
        count, first, _note = seen
        job_log = log.bind(job_id=watch.job_id)
        if count >= REJECT_LIMIT and now - first >= REJECT_WINDOW:
            self._reject(watch, vendor_msg, count, now - first, now)
            return
        job_log.warning(
            "vendor rejected the job id; will ask again",
            vendor_msg=vendor_msg,
            rejections=count,
        )

    def _reject(
        self, watch: WatchRow, vendor_msg: str, count: int, over: float, now: float
    ) -> None:
        """Give the watch up as unknown to the vendor, with its ``lip_sync.rejected`` event
        (the vendor's answer as ``msg``; status and progress as last seen, 0 if never)."""
        last = _last_seen(watch, vendor_msg)
        event = build_event(
            last, watch.labels, now, watch.last_poll_at, rejections=count, reopens=watch.reopens
        )
        endpoints = route(event.type, watch.endpoints, self.subscriptions)
        # The vendor's answer first: `watch list` cuts a long note.
        note = f"unknown to the vendor: {vendor_msg} ({count}x in {over:.0f}s)"
        if not self.store.reject_watch(watch.job_id, note, event, endpoints):
            return
        self.events += 1
        log.error(
            "vendor does not know this job; no longer polled",
            job_id=watch.job_id,
            event_id=event.event_id,
            vendor_msg=vendor_msg,
            rejections=count,
            endpoints=endpoints,
            hint="check the id; see `watch list --state rejected`",
        )
        self._on_event()

    def _retry_later(self, watch: WatchRow, error: str) -> float:
        delay = retry_delay(watch.errors + 1, self.settings, self._rng.random())
        self.store.record_poll_error(watch.job_id, error, self._clock() + delay)
        return delay

    # -- what an answer means -------------------------------------------------------------

    def observe(self, watch: WatchRow, detail: JobDetail, *, not_before: float = 0.0) -> None:
        """Record what the vendor said of a job: progress and the next poll, or its end.

        ``not_before`` (a sweep's observation) pushes the next detail poll's deadline at
        least that late, as the sweep will look again by then; the time it becomes worth
        spare budget stays as the last detail poll planned it, so spare budget keeps going
        to detail polls.
        """
        now = self._clock()
        if not detail.terminal:
            plan = plan_after_poll(watch.memory(), detail, now, self.settings)
            earliest = plan.earliest
            deadline = plan.deadline
            if not_before:
                deadline = max(deadline, min(not_before, now + self.settings.max_interval))
                earliest = min(earliest, watch.next_poll_at)
            if now - watch.added_at >= self.settings.give_up_after:
                # Its last look (expire() made it due) says it is still not finished.
                with self.store.transaction():
                    self.store.record_poll(detail, earliest, deadline, plan.memory)
                    self._expire(watch, detail, now)
                return
            self.store.record_poll(detail, earliest, deadline, plan.memory)
            if detail.phase != watch.phase or detail.progress != watch.progress:
                log.debug(
                    "job progress",
                    job_id=watch.job_id,
                    kind=detail.kind,
                    phase=detail.phase.value,
                    status=detail.status,
                    progress=detail.progress,
                )
            return
        event = build_event(detail, watch.labels, now, watch.last_poll_at, reopens=watch.reopens)
        endpoints = route(event.type, watch.endpoints, self.subscriptions)
        if self.store.record_terminal(detail, event, endpoints):
            self.events += 1
            log.info(
                "job finished",
                job_id=watch.job_id,
                event_id=event.event_id,
                type=event.type,
                status=detail.status,
                vendor_msg=detail.msg,
                endpoints=endpoints,
            )
            self._on_event()

    # -- list sweeps ----------------------------------------------------------------------

    async def sweep(self) -> None:
        """The scheduled sweep (or one asked for early: :meth:`sweep_soon`); one at a time,
        a caller while one runs waits for that one. Its errors reach the caller."""
        running = self._sweeping
        if running is None or running.done():
            running = self._sweeping = asyncio.ensure_future(self._sweep_once())
            running.add_done_callback(_retrieved)
            self._swept_at = time.monotonic()
        # wait(), not await: a caller that gives up (a gateway client hanging up) must not
        # cancel a sweep others wait for.
        await asyncio.wait({running})
        running.result()

    async def sweep_soon(self) -> None:
        """A sweep now, for an application asking about watched jobs whose last observation
        is too old to answer with (the gateway): one list call sees up to a page of them,
        where each would be a detail call. Not within SWEEP_SOON_SHARE of ``min_interval``
        of the last one's start; while one runs, wait for it. Its errors are the scheduled
        sweep's business."""
        running = self._sweeping
        every = max(1.0, self.settings.min_interval * SWEEP_SOON_SHARE)
        if (running is None or running.done()) and time.monotonic() - self._swept_at < every:
            return
        with contextlib.suppress(Exception):
            await self.sweep()

    async def _sweep_once(self) -> None:
        """Every ``min_interval``: note the load (for the policy's round-robin cap), then
        look at the newest jobs page by page, stopping once past the oldest watched one
        (and, with discovery, past the covered mark).

        A sweep that runs out of budget first (an account busy with other jobs) leaves the
        next one to start where it stopped, so consecutive sweeps reach every watched job.
        """
        active, _pending = self.store.live_counts()
        fair = max(self.settings.min_interval, active / max(self.limiter.qps, 1))
        self.settings = replace(self.settings, fair_interval=fair)
        discovery = self.discovery
        if not (active or discovery) or not self.list_sweep:
            return
        if self._clock() < self._sweep_paused_until:
            return
        if not self.vendor.may_call():
            return  # a standby node: the vendor lease holder sweeps
        self._grow_page_size()
        interval = self.settings.min_interval
        budget = self.limiter.qps * interval
        max_pages = max(1, int(budget * SWEEP_BUDGET_SHARE))
        max_productive = max(max_pages, int(budget * SWEEP_BUDGET_SHARE_PRODUCTIVE))
        productive = False
        oldest = self.store.oldest_active_create_time()
        newest = self.store.newest_active_create_time()
        # Until the next sweep, detail polls of the jobs this one saw are not due (they may
        # still use spare budget).
        covered_until = self._clock() + 2 * interval
        seen = 0
        new_round = self._resume_page <= 1
        floor = 0.0
        made: set[str] = set()  # watches this sweep made
        if discovery is not None:
            # The leading pages are where new jobs are: a round starts at the newest.
            self._skip_pages = 0
            floor = discovery.floor()
        page = first = self._skip_pages + 1 if new_round else self._resume_page
        fetches: dict[int, tuple[int, asyncio.Task[ListPage]]] = {}
        started = 0

        def fetch(n: int) -> None:
            nonlocal started
            if n not in fetches and started < (max_productive if productive else max_pages):
                started += 1
                call = self.vendor.list_page(n, self.page_size)
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
                    self._page_size_since = self._clock()
                    log.info("vendor caps the list page size", page_size=self.page_size)
                if discovery is not None:
                    if new_round and page == 1:
                        discovery.start_round(answer.details)
                    made |= discovery.take(answer.details, floor)
                watched = self._observe_page(answer.details, covered_until)
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
                    discovery.finish_round(floor)
                if not answer.received or page >= answer.pages or (watches_done and discovery_done):
                    # What the next round, starting after the leading pages, will need.
                    self._round_pages = page - self._skip_pages
                    if discovery is not None:
                        discovery.finish_round(floor)
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
            self.sweep_results["refused"] += 1
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
        self._sweep_failures = 0
        self.sweeps += 1
        self.sweep_results[result] += 1

    def _grow_page_size(self) -> None:
        now = self._clock()
        if self.page_size < PAGE_SIZE and now - self._page_size_since >= PAGE_GROW_AFTER:
            self.page_size = min(PAGE_SIZE, self.page_size * 2)
            self._page_size_since = now
            self._resume_page = 1
            log.info("trying larger list pages", page_size=self.page_size)

    def _sweep_failed(self, exc: Exception, page: int) -> None:
        self._sweep_failures += 1
        wait = min(SWEEP_RETRY_MAX, SWEEP_RETRY_FIRST * 2.0 ** (self._sweep_failures - 1))
        self._sweep_paused_until = self._clock() + wait
        self._resume_page = page
        self.sweep_results["failed"] += 1
        log.warning(
            "list sweep failed; detail polls carry on",
            error=str(exc),
            retry_in=wait,
            failures=self._sweep_failures,
        )

    def sweep_state(self) -> dict[str, Any]:
        """For /metrics: page size, whether sweeps are paused and for how long, results."""
        retry_in = max(0.0, self._sweep_paused_until - self._clock()) if self.list_sweep else 0.0
        return {
            "enabled": self.list_sweep,
            "page_size": self.page_size,
            "paused": retry_in > 0,
            "retry_in": retry_in,
            "results": dict(self.sweep_results),
            "discovering": self.discovery is not None,
            "discovered": self.discovery.discovered if self.discovery is not None else 0,
        }

    def _observe_page(self, details: Sequence[JobDetail], covered_until: float) -> set[str]:
        """Record what a list page says of watched jobs; the ids of those it held."""
        by_id = {d.id: d for d in details}
        watches = self.store.active_watches_among(list(by_id))
        try:
            # One commit for the page, not one per job: a sweep must fit its interval.
            with self.store.transaction():
                for watch in watches:
                    polling = self._in_flight.get(watch.job_id)
                    if polling is not None:
                        if not by_id[watch.job_id].terminal:
                            continue  # its detail poll is on its way; let that one record it
                        # Finished: say so now, not when that poll's turn comes (it may wait
                        # behind list calls), and spare its budget.
                        polling.cancel()
                    detail = by_id[watch.job_id]
                    if _behind(watch, detail):
                        continue  # a list answer older than a detail poll's: nothing new
                    try:
                        self.observe(watch, detail, not_before=covered_until)
                    except DB_ERRORS:
                        raise  # the rest of the page cannot be recorded either
                    except Exception:
                        log.exception("could not record a swept job", job_id=watch.job_id)
        except DB_ERRORS:
            raise  # the daemon pauses and reports the state file's trouble
        except Exception:
            log.exception("could not record a swept page")
        return {watch.job_id for watch in watches}

    async def expire(self) -> None:
        """Watches past ``give_up_after`` get one more look (they are made due) and expire
        only once an answer that late says they are still not finished."""
        now = self._clock()
        expired = 0
        for watch in self.store.expirable_watches(self.settings.give_up_after):
            last = _last_seen(watch, "")
            expired += self._expire(watch, last, now)
        if expired:
            log.warning(
                "watches expired",
                count=expired,
                give_up_after=self.settings.give_up_after,
                hint="they are no longer polled; see `watch list --state expired`",
            )

    def _expire(self, watch: WatchRow, detail: JobDetail, now: float) -> bool:
        """Give the watch up, with its ``lip_sync.expired`` event (what was last seen)."""
        event = build_event(
            detail, watch.labels, now, watch.last_poll_at, expired=True, reopens=watch.reopens
        )
        endpoints = route(event.type, watch.endpoints, self.subscriptions)
        cutoff = now - self.settings.give_up_after
        if not self.store.expire_watch(watch.job_id, event, endpoints, cutoff):
            return False
        self.events += 1
        log.warning(
            "watch expired",
            job_id=watch.job_id,
            event_id=event.event_id,
            status=detail.status,
            progress=detail.progress,
            give_up_after=self.settings.give_up_after,
            endpoints=endpoints,
            hint="no longer polled; see `watch list --state expired`",
        )
        self._on_event()
        return True

    async def drain(self, grace: float) -> None:
        """Let polls already sent finish for up to ``grace`` seconds; cancel the rest."""
        self.limiter.close()
        await settle(list(self._in_flight.values()), grace)


def _retrieved(task: asyncio.Task[None]) -> None:
    """A sweep nobody awaits any more (its caller gave up) must not log "never retrieved"."""
    if not task.cancelled():
        task.exception()


def _behind(watch: WatchRow, detail: JobDetail) -> bool:
    """The list answer shows the job earlier in its run than we last saw it (the vendor's
    list can lag behind its detail answers): recording it would set the plan back."""
    if detail.terminal or watch.phase is None:
        return False
    if watch.phase is Phase.RUNNING and detail.phase is Phase.QUEUED:
        return True
    return detail.phase is watch.phase and detail.progress < (watch.progress or 0)


def _last_seen(watch: WatchRow, msg: str) -> JobDetail:
    """The job as last seen, for the event of a watch given up (expired or rejected): its
    status, phase and progress as recorded (never seen: queued, the kind's ``unseen_status``)."""
    kind = kinds.get(watch.kind)
    seen = {"status": watch.status, "progress": watch.progress or 0, "msg": msg}
    return JobDetail(
        id=watch.job_id,
        status=kind.unseen_status if watch.status is None else watch.status,
        progress=watch.progress or 0,
        msg=msg,
        create_time=watch.create_time or 0,
        kind=kind.name,
        phase=watch.phase or Phase.QUEUED,
        data=None if kind.payload_fields else seen,
    )
