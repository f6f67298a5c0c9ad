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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

from notifier import kinds
from notifier._tasks import settle
from notifier.delivery.transition import build_event, route
from notifier.kinds import Phase
from notifier.log import get_logger
from notifier.models import DEFAULT_ACCOUNT, JobDetail
from notifier.polling.discovery import Discoverer, DiscoverySettings
from notifier.polling.lease import LeaseLost
from notifier.polling.policy import PollingSettings, plan_after_poll, retry_delay
from notifier.polling.ratelimit import LimiterClosed, RateLimiter
from notifier.polling.sweep import Budget, IdSweep, PageSweep
from notifier.polling.vendor import CredentialsRejected, UnknownJob, VendorClient, VendorError
from notifier.store import DB_ERRORS, Store, StoreUnavailable, WatchRow

log = get_logger(component="poller")

#: Keep about this many seconds of budget queued at the limiter, so it never runs dry
#: between ticks, while the choice of *which* job to poll stays fresh.
LOOKAHEAD_SECONDS = 1.0
#: A sweep may spend at most this share of the budget of one sweep interval…
SWEEP_BUDGET_SHARE = 0.5
#: …or up to this share while its pages keep holding watched jobs (at least
#: sweep.PRODUCTIVE_SHARE of a page): such a call sees many jobs, a detail call one. The
#: shares are split between kinds by their active watches.
SWEEP_BUDGET_SHARE_PRODUCTIVE = 0.8
#: Sweeps asked for early (:meth:`Poller.sweep_soon`) start at most once per this share of
#: ``min_interval`` (the scheduled ones come every min_interval), and a second apart at least.
SWEEP_SOON_SHARE = 0.5
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
    #: The account whose watches it polls (its lane's): a lane never touches another's.
    account: str = DEFAULT_ACCOUNT


class Poller:
    def __init__(
        self,
        store: Store,
        vendor: VendorClient,
        limiter: RateLimiter,
        settings: PollerSettings,
        *,
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vendor = vendor
        self.limiter = limiter
        #: Fixed for the poller's life (a lane is one account).
        self.account = settings.account
        self.settings = settings.polling
        self.subscriptions = list(settings.subscriptions)
        self.list_sweep = settings.list_sweep
        #: ``watch.discover``: sweeps also make watches of new jobs (None: off; its since
        #: is read from the state here).
        self.discovery = (
            None
            if settings.discovery is None
            else Discoverer(store, settings.discovery, self.account)
        )
        self._on_event = on_event
        self._clock = clock
        self._rng = random.Random()
        #: Polls on their way, by (kind, job id): the same id under two kinds is two watches.
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        #: The sweep under way (the scheduled one or one asked for early), and when the
        #: last one started (monotonic).
        self._sweeping: asyncio.Task[None] | None = None
        self._swept_at = -math.inf
        #: Sweeps by result, every kind's: ok (every page it needed), partial (out of
        #: budget: the next one resumes), refused (page size rejected), failed (list call
        #: failed).
        self.sweep_results: dict[str, int] = {"ok": 0, "partial": 0, "refused": 0, "failed": 0}
        #: One sweep per kind with a list call, keeping its place between rounds.
        self._sweeps: dict[str, PageSweep | IdSweep] = {
            k.name: (PageSweep if k.listing.by == "page" else IdSweep)(k, self.sweep_results, clock)
            for k in kinds.KINDS.values()
            if k.listing is not None
        }
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
            self.discovery = Discoverer(self.store, settings.discovery, self.account)
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
        # By id alone: a twin of another kind waits for the next tick (ids of different
        # kinds rarely meet), and no watch is ever polled twice at once.
        busy = frozenset(job_id for _kind, job_id in self._in_flight)
        account = self.account
        chosen = self.store.due_watches(now, want, busy, account=account)
        if len(chosen) < want:
            busy = busy | {w.job_id for w in chosen}
            chosen += self.store.early_watches(now, want - len(chosen), busy, account=account)
        for watch in chosen:
            self._start(watch, self._poll_quietly(watch))

    def polling(self, job_id: str, kind: str = kinds.DEFAULT_KIND) -> bool:
        """Whether a detail poll of the watch (``kind``, ``job_id``) is on its way."""
        return (kind, job_id) in self._in_flight

    def poll_now(self, watch: WatchRow) -> bool:
        """Poll ``watch`` at once, ahead of ordinary calls at the limiter (a vendor callback
        said it may have finished). False when a poll of it is on its way already."""
        if (watch.kind, watch.job_id) in self._in_flight:
            return False
        self._start(watch, self._poll_quietly(watch, priority=True))
        return True

    def _start(self, watch: WatchRow, poll: Coroutine[Any, Any, None]) -> None:
        key = (watch.kind, watch.job_id)
        task = asyncio.create_task(poll, name=f"poll {watch.kind} {watch.job_id}")
        self._in_flight[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._in_flight.get(key) is done:
                del self._in_flight[key]

        task.add_done_callback(forget)

    async def probe(self, job_id: str, kind: str = kinds.DEFAULT_KIND) -> JobDetail | None:
        """One priority detail call for an id with no watch (a vendor callback named it):
        what the vendor says of it, or None when it does not know it (40000). Nothing is
        recorded; other failures raise as :meth:`VendorClient.detail` raises them."""
        try:
            return await self.vendor.detail(job_id, priority=True, kind=kinds.get(kind))
        except UnknownJob:
            return None

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
            watch.job_id,
            vendor_msg,
            now + REJECT_RETRY,
            REJECT_WINDOW,
            kind=watch.kind,
            account=watch.account,
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
        if not self.store.reject_watch(
            watch.job_id, note, event, endpoints, kind=watch.kind, account=watch.account
        ):
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
        self.store.record_poll_error(
            watch.job_id, error, self._clock() + delay, kind=watch.kind, account=watch.account
        )
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
        active, _pending = self.store.live_counts(self.account)
        fair = max(self.settings.min_interval, active / max(self.limiter.qps, 1))
        self.settings = replace(self.settings, fair_interval=fair)
        discovery = self.discovery
        if not (active or discovery) or not self.list_sweep:
            return
        if not self.vendor.may_call():
            return  # a standby node: the vendor lease holder sweeps
        interval = self.settings.min_interval
        budget = self.limiter.qps * interval
        # A kind discovery covers is swept watched or not: discovery reads its list.
        counts = self.store.active_counts_by_kind(self.account)
        for name in discovery.settings.kinds if discovery is not None else ():
            counts.setdefault(name, 0)
        total = sum(counts.values())
        runs = []
        for name, count in counts.items():
            sweep = self._sweeps.get(name)
            if sweep is None or sweep.paused():
                continue
            with_discovery = discovery if discovery is not None and discovery.covers(name) else None
            if not count and with_discovery is None:
                continue
            share = count / total if total else 1.0
            pages = max(1, int(budget * SWEEP_BUDGET_SHARE * share))
            productive = max(pages, int(budget * SWEEP_BUDGET_SHARE_PRODUCTIVE * share))
            runs.append(sweep.run(self, Budget(pages, productive), count, interval, with_discovery))
        # Side by side: each kind's pages queue at the one limiter as its budget allows.
        await asyncio.gather(*runs)

    def clock(self) -> float:
        return self._clock()

    @property
    def page_size(self) -> int:
        """Jobs per lip-sync list call now (the vendor may have capped it)."""
        return self._sweeps[kinds.DEFAULT_KIND].page_size

    @property
    def sweeps(self) -> int:
        return sum(s.sweeps for s in self._sweeps.values())

    def sweep_state(self) -> dict[str, Any]:
        """For /metrics: page size, whether sweeps are paused and for how long, results
        (lip-sync's page size; paused while any kind's sweeps wait)."""
        now = self._clock()
        paused_until = max(s.paused_until for s in self._sweeps.values())
        retry_in = max(0.0, paused_until - now) if self.list_sweep else 0.0
        return {
            "enabled": self.list_sweep,
            "page_size": self.page_size,
            "paused": retry_in > 0,
            "retry_in": retry_in,
            "results": dict(self.sweep_results),
            "discovering": self.discovery is not None,
            "discovered": self.discovery.discovered if self.discovery is not None else 0,
        }

    def observe_page(
        self, details: Sequence[JobDetail], covered_until: float, kind: kinds.Kind
    ) -> set[str]:
        """Record what a list page of ``kind`` says of watched jobs; the ids of those it
        held."""
        by_id = {d.id: d for d in details}
        watches = self.store.active_watches_among(list(by_id), kind=kind.name, account=self.account)
        try:
            # One commit for the page, not one per job: a sweep must fit its interval.
            with self.store.transaction():
                for watch in watches:
                    polling = self._in_flight.get((watch.kind, watch.job_id))
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
        give_up_after = self.settings.give_up_after
        for watch in self.store.expirable_watches(give_up_after, account=self.account):
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
        if not self.store.expire_watch(
            watch.job_id, event, endpoints, cutoff, kind=watch.kind, account=watch.account
        ):
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
        account=watch.account,
        data=None if kind.payload_fields else seen,
    )
