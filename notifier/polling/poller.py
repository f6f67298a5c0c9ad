"""Asks the vendor about watched jobs and turns the answers into state (and events).

Two ways to look: a detail call per job, planned by the polling policy, and a list sweep
that sees up to a page of the account's newest jobs per call. With many jobs the sweep is
far cheaper; jobs it covers are left out of detail polling while it keeps covering them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from notifier._tasks import settle
from notifier.delivery.transition import build_event, route
from notifier.log import get_logger
from notifier.models import JobDetail
from notifier.polling.policy import PollingSettings, plan_after_poll, retry_delay
from notifier.polling.ratelimit import LimiterClosed, RateLimiter
from notifier.polling.vendor import (
    CredentialsRejected,
    ParameterRejected,
    UnknownJob,
    VendorClient,
    VendorError,
)
from notifier.store import Store, StoreUnavailable, WatchRow

log = get_logger(component="poller")

#: Keep about this many seconds of budget queued at the limiter, so it never runs dry
#: between ticks, while the choice of *which* job to poll stays fresh.
LOOKAHEAD_SECONDS = 1.0
#: Jobs per list call we ask for first; a vendor that refuses it (40000) or caps it gets
#: smaller pages, down to MIN_PAGE_SIZE.
PAGE_SIZE = 100
MIN_PAGE_SIZE = 10
#: A sweep may spend at most this share of the budget of one sweep interval.
SWEEP_BUDGET_SHARE = 0.5
#: After a failed sweep, wait this long before sweeping again (detail polls carry on).
SWEEP_RETRY_AFTER = 60.0


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
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vendor = vendor
        self.limiter = limiter
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.list_sweep = list_sweep
        self._on_event = on_event
        self._clock = clock
        self._rng = random.Random()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._sweep_paused_until = 0.0
        self.page_size = PAGE_SIZE
        self.sweeps = 0
        self.events = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- detail polls ---------------------------------------------------------------------

    async def tick(self) -> None:
        """Start polls: due ones first (most overdue first), then early ones if budget is
        spare, up to about a second of budget ahead."""
        want = max(1, int(self.limiter.qps * LOOKAHEAD_SECONDS)) - len(self._in_flight)
        if want <= 0:
            return
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

    def _forget(self, task: asyncio.Task[None]) -> None:
        job_id = task.get_name().removeprefix("poll ")
        if self._in_flight.get(job_id) is task:
            del self._in_flight[job_id]

    async def _poll_quietly(self, watch: WatchRow) -> None:
        """A poll whose outcome cannot be stored changes nothing: the watch stays due, and
        the daemon reports the state file's trouble (once, not per poll)."""
        with contextlib.suppress(StoreUnavailable):
            await self._poll(watch)

    async def _poll(self, watch: WatchRow) -> None:
        job_log = log.bind(job_id=watch.job_id)
        try:
            detail = await self.vendor.detail(watch.job_id)
        except LimiterClosed:
            return  # shutting down before the call went out: nothing happened
        except UnknownJob as exc:
            self.store.fail_watch(watch.job_id, f"vendor rejected the id: {exc}")
            job_log.error("vendor does not know this job; no longer polled", vendor_msg=str(exc))
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
        except Exception:
            job_log.exception("could not record the poll; will retry")

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
            self.store.record_poll(detail, earliest, deadline, plan.memory)
            if detail.status != watch.status or detail.progress != watch.progress:
                log.debug(
                    "job progress",
                    job_id=watch.job_id,
                    status=detail.status,
                    progress=detail.progress,
                )
            return
        event = build_event(detail, watch.labels, now, watch.last_poll_at)
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
        """Every ``min_interval``: note the load (for the policy's round-robin cap), then
        look at the newest jobs page by page, stopping once past the oldest watched one."""
        active, _pending = self.store.live_counts()
        fair = max(self.settings.min_interval, active / max(self.limiter.qps, 1))
        self.settings = replace(self.settings, fair_interval=fair)
        if not active or not self.list_sweep or self._clock() < self._sweep_paused_until:
            return
        interval = self.settings.min_interval
        max_pages = max(1, int(self.limiter.qps * interval * SWEEP_BUDGET_SHARE))
        oldest = self.store.oldest_active_create_time()
        # Until the next sweep, detail polls of the jobs this one saw are not due (they may
        # still use spare budget).
        covered_until = self._clock() + 2 * interval
        seen = 0
        page = 1
        while page <= max_pages:
            try:
                details, pages = await self.vendor.list_page(page, self.page_size)
            except LimiterClosed:
                return
            except ParameterRejected as exc:
                if self.page_size > MIN_PAGE_SIZE:
                    self.page_size = max(MIN_PAGE_SIZE, self.page_size // 2)
                    log.info(
                        "vendor refused the page size; asking for less",
                        page_size=self.page_size,
                        error=str(exc),
                    )
                    return  # next sweep uses the smaller pages
                self._pause_sweeps(exc)
                return
            except (VendorError, UnknownJob) as exc:
                self._pause_sweeps(exc)
                return
            if details and len(details) < self.page_size and page < pages:
                # A full page came back short: the vendor caps the page size; follow it.
                self.page_size = max(MIN_PAGE_SIZE, len(details))
            seen += self._observe_page(details, covered_until)
            # create_time 0 means the vendor did not say: it cannot tell us where we are.
            stamps = [d.create_time for d in details if d.create_time > 0]
            if (
                not details
                or page >= pages
                or seen >= active
                or (oldest is not None and stamps and min(stamps) < oldest)
            ):
                break
            page += 1
        self.sweeps += 1

    def _pause_sweeps(self, exc: Exception) -> None:
        self._sweep_paused_until = self._clock() + SWEEP_RETRY_AFTER
        log.warning(
            "list sweep failed; detail polls carry on",
            error=str(exc),
            retry_in=SWEEP_RETRY_AFTER,
        )

    def _observe_page(self, details: Sequence[JobDetail], covered_until: float) -> int:
        by_id = {d.id: d for d in details}
        watches = self.store.active_watches_among(list(by_id))
        for watch in watches:
            if watch.job_id in self._in_flight:
                continue  # its detail poll is on its way; let that one record it
            try:
                self.observe(watch, by_id[watch.job_id], not_before=covered_until)
            except StoreUnavailable:
                raise  # the rest of the page cannot be recorded either
            except Exception:
                log.exception("could not record a swept job", job_id=watch.job_id)
        return len(watches)

    async def expire(self) -> None:
        expired = self.store.expire_watches(self.settings.give_up_after)
        if expired:
            log.warning(
                "watches expired",
                count=expired,
                give_up_after=self.settings.give_up_after,
                hint="they are no longer polled; see `watch list --state expired`",
            )

    async def drain(self, grace: float) -> None:
        """Let polls already sent finish for up to ``grace`` seconds; cancel the rest."""
        self.limiter.close()
        await settle(list(self._in_flight.values()), grace)
