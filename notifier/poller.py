"""Takes due watches, asks the vendor, and turns answers into state (and events)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from notifier.log import get_logger
from notifier.models import JobDetail
from notifier.policy import PollingSettings, next_poll_delay
from notifier.ratelimit import LimiterClosed, RateLimiter
from notifier.store import Store, WatchRow
from notifier.transition import build_event, route
from notifier.vendor import CredentialsRejected, UnknownJob, VendorClient, VendorError

log = get_logger(component="poller")

#: Keep about this many seconds of budget queued at the limiter, so it never runs dry
#: between ticks, while the choice of *which* job to poll stays fresh.
LOOKAHEAD_SECONDS = 1.0


class Poller:
    def __init__(
        self,
        store: Store,
        vendor: VendorClient,
        limiter: RateLimiter,
        settings: PollingSettings,
        subscriptions: Sequence[tuple[str, Sequence[str]]],
        *,
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vendor = vendor
        self.limiter = limiter
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self._on_event = on_event
        self._clock = clock
        self._rng = random.Random()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self.polls = 0
        self.events = 0

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def tick(self) -> None:
        """Start polls for the most overdue jobs, up to about a second of budget ahead."""
        want = max(1, int(self.limiter.qps * LOOKAHEAD_SECONDS)) - len(self._in_flight)
        if want <= 0:
            return
        due = self.store.due_watches(self._clock(), want, frozenset(self._in_flight))
        for watch in due:
            task = asyncio.create_task(self._poll(watch), name=f"poll {watch.job_id}")
            self._in_flight[watch.job_id] = task
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        job_id = task.get_name().removeprefix("poll ")
        if self._in_flight.get(job_id) is task:
            del self._in_flight[job_id]

    async def expire(self) -> None:
        expired = self.store.expire_watches(self.settings.give_up_after)
        if expired:
            log.warning(
                "watches expired",
                count=expired,
                give_up_after=self.settings.give_up_after,
                hint="they are no longer polled; see `watch list --state expired`",
            )

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
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not stop the other jobs
            self._retry_later(watch, f"internal error: {type(exc).__name__}")
            job_log.exception("poll crashed; will retry")
            return
        self.polls += 1
        try:
            self._apply(watch, detail, job_log)
        except Exception:
            job_log.exception("could not record the poll; will retry")

    def _retry_later(self, watch: WatchRow, error: str) -> float:
        delay = next_poll_delay(None, watch.errors + 1, self.settings, self._rng.random())
        self.store.record_poll_error(watch.job_id, error, self._clock() + delay)
        return delay

    def _apply(self, watch: WatchRow, detail: JobDetail, job_log: Any) -> None:
        if not detail.terminal:
            delay = next_poll_delay(detail, 0, self.settings, self._rng.random())
            self.store.record_poll(detail, self._clock() + delay)
            if detail.status != watch.status or detail.progress != watch.progress:
                job_log.debug("job progress", status=detail.status, progress=detail.progress)
            return
        event = build_event(detail, watch.labels, self._clock(), watch.last_poll_at)
        endpoints = route(event.type, watch.endpoints, self.subscriptions)
        if self.store.record_terminal(detail, event, endpoints):
            self.events += 1
            job_log.info(
                "job finished",
                event_id=event.event_id,
                type=event.type,
                status=detail.status,
                vendor_msg=detail.msg,
                endpoints=endpoints,
            )
            self._on_event()

    async def drain(self, grace: float) -> None:
        """Let polls already sent finish for up to ``grace`` seconds; cancel the rest."""
        self.limiter.close()
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
