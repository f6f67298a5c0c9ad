"""The vendor callback's fast path: a detail poll now for a job that says it finished.

The callback is unsigned and may be forged, so it only moves a poll earlier; what the poll
answers is what gets recorded. Bounded so that a flood of callbacks (forged ones too) cannot
starve ordinary polling: fast polls go ahead of ordinary calls at the limiter, but at most
``FAST_SHARE`` of the budget per second takes that lane; a callback over it makes its watch
due now, and the watch takes its turn with the others at the next poll tick. The limiter
keeps the total within ``qps`` whatever happens here.

An id that is not watched yet is not made a watch on the callback's word (random ids would
each become a watch, polled until the vendor's 40000s fail it): it gets one detail poll in
the same lane first (:meth:`FastPath.verify`), and only an answer for it (the job is on the
account) makes the watch, recorded as that poll's observation. A 40000 makes nothing. The
vendor sends a callback once, so one over the share is not dropped: it waits in a bounded
set, verified newest first as the share refills (the latest callback of a burst goes first;
past ``PENDING_MAX`` the oldest are dropped, counted).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from notifier import kinds
from notifier._tasks import settle
from notifier.log import LineBudget, get_logger
from notifier.models import JobDetail
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterClosed, Share
from notifier.store import DB_ERRORS

log = get_logger(component="poller")

#: Share of ``qps`` that fast-path polls may use (per second, in a burst of as many).
FAST_SHARE = 0.5
#: Unwatched ids from callbacks over the share waiting to be verified, at most.
PENDING_MAX = 256
#: At most one log line per this many seconds about callbacks for ids the vendor does not
#: know (forged or mistyped), and one about pending ids dropped.
QUIET_LOG_EVERY = 10.0

#: Makes the watch of a verified id (the callback's labels and endpoints); False when the
#: id is watched and finished already. It raises the store's error when the state cannot
#: be written, having kept the id to handle it again later (the intake's business).
Admit = Callable[[str], bool]
#: Told what became of each verification (metrics): verified, unknown_job, unverified,
#: dropped, error.
Outcomes = Callable[[str], None]


class _Quiet:
    """One log line per ``every`` seconds, with the count of those held back."""

    def __init__(self, event: str, clock: Callable[[], float], every: float) -> None:
        self.event = event
        self._lines = LineBudget(every, clock)

    def __call__(self, **fields: object) -> None:
        held = self._lines.take()
        if held is not None:
            log.warning(self.event, count=held + 1, **fields)


class FastPath:
    """Turns "poll this job now" requests into polls, within a share of the budget."""

    def __init__(
        self,
        poller: Poller,
        *,
        clock: Callable[[], float] = time.monotonic,
        outcomes: Outcomes | None = None,
    ) -> None:
        self.poller = poller
        self._share = Share(poller.limiter, FAST_SHARE, clock=clock)
        self._outcomes = outcomes
        #: (id, kind) waiting for a place in the lane, oldest first, with their admission
        #: hook.
        self._pending: OrderedDict[tuple[str, str], Admit] = OrderedDict()
        self._verifying: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._unknown = _Quiet(
            "vendor callbacks for jobs the vendor does not know; no watch made",
            clock,
            QUIET_LOG_EVERY,
        )
        self._dropped = _Quiet(
            "vendor callbacks dropped unverified: too many waiting", clock, QUIET_LOG_EVERY
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _outcome(self, result: str) -> None:
        if self._outcomes is not None:
            self._outcomes(result)

    def request(self, job_id: str, kind: str = kinds.DEFAULT_KIND) -> str:
        """Poll ``job_id`` (an active watch) soon. Returns what was done:

        ``polling`` a priority poll started; ``in_flight`` one is on its way already;
        ``due`` made due now (over the fast share: the next tick polls it in turn);
        ``standby`` made due now for the vendor lease holder (this node may not call);
        ``finished`` not an active watch: nothing to do.
        """
        poller = self.poller
        store = poller.store
        if not poller.vendor.may_call():
            return (
                "standby"
                if store.make_due(job_id, kind=kind, account=poller.account)
                else "finished"
            )
        if poller.polling(job_id, kind):
            return "in_flight"
        summary = store.watch_summary(job_id, kind=kind, account=poller.account)
        watch = store.get_watch(job_id, kind=kind, account=poller.account)
        if summary is None or summary["state"] != "active" or watch is None:
            return "finished"
        if not self._share.take():
            return (
                "due" if store.make_due(job_id, kind=kind, account=poller.account) else "finished"
            )
        poller.poll_now(watch)
        return "polling"

    # -- ids not watched yet --------------------------------------------------------------

    def verify(self, job_id: str, kind: str, admit: Admit) -> str:
        """Ask the vendor about ``job_id`` (not watched) before it becomes a watch through
        ``admit``. Returns what was done (never waits for the vendor):

        ``verifying`` a priority poll started; ``in_flight`` one is on its way; ``pending`` over
        the share: it waits its turn; ``standby`` this node may not call the vendor: the
        watch was made (within the share) and made due for the lease holder.
        """
        key = (job_id, kind)
        if key in self._verifying:
            return "in_flight"
        if key in self._pending:
            self._pending[key] = admit
            return "pending"
        if self._share.take():
            return self._start(key, admit)
        self._hold(key, admit)
        return "pending"

    def _start(self, key: tuple[str, str], admit: Admit) -> str:
        job_id, kind = key
        if not self.poller.vendor.may_call():
            # The lease holder polls it as any watch (a 40000 fails it within minutes); the
            # share still bounds how fast callbacks make watches here.
            if admit(job_id):
                self.poller.store.make_due(job_id, kind=kind, account=self.poller.account)
            self._outcome("unverified")
            return "standby"
        task = asyncio.create_task(self._verify(key, admit), name=f"verify {job_id}")
        self._verifying[key] = task
        task.add_done_callback(lambda _task: self._verifying.pop(key, None))
        return "verifying"

    def _hold(self, key: tuple[str, str], admit: Admit) -> None:
        self._pending[key] = admit
        while len(self._pending) > PENDING_MAX:
            (dropped, kind), _admit = self._pending.popitem(last=False)
            self._outcome("dropped")
            self._dropped(job_id=dropped, kind=kind, waiting=PENDING_MAX)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="callback verification")

    async def _drain(self) -> None:
        """Verify waiting ids as the share refills, newest first."""
        while self._pending:
            wait = self._share.available_in()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))  # a reload may change the share
                continue
            if not self._share.take():
                await asyncio.sleep(0.01)
                continue
            key, admit = self._pending.popitem(last=True)
            job_id = key[0]
            try:
                self._start(key, admit)
            except DB_ERRORS:
                self._outcome("held")  # admit kept it: handled again when the state can be
            except Exception:  # the state file's trouble: the daemon reports it
                self._outcome("error")
                log.exception("vendor callback: cannot verify the job", job_id=job_id)

    async def _verify(self, key: tuple[str, str], admit: Admit) -> None:
        job_id, kind = key
        try:
            detail = await self.poller.probe(job_id, kind)
        except LimiterClosed:
            return  # stopping: nothing was sent
        except Exception as exc:  # vendor trouble says nothing of the id
            # Not lost: the watch is made and polled in its turn, as before verification
            # (a 40000 then fails it); the share bounded how fast this can happen.
            self._admit(key, admit, None, f"{type(exc).__name__}: {exc}")
            return
        if detail is None:
            self._outcome("unknown_job")
            self._unknown(
                job_id=job_id, kind=kind, hint="forged or mistyped; the vendor answered 40000"
            )
            return
        self._admit(key, admit, detail)

    def _admit(
        self, key: tuple[str, str], admit: Admit, detail: JobDetail | None, error: str = ""
    ) -> None:
        """Make the watch; record ``detail`` as its first poll (a terminal answer makes its
        event now), or with no answer make it due."""
        poller = self.poller
        job_id, kind = key
        try:
            if not admit(job_id):
                self._outcome("finished")
                return
            watch = poller.store.get_watch(job_id, kind=kind, account=poller.account)
            if watch is None:
                return
            if detail is None:
                poller.store.make_due(job_id, kind=kind, account=poller.account)
                self._outcome("unverified")
                log.warning(
                    "vendor callback: could not verify the job; watching it",
                    job_id=job_id,
                    error=error,
                )
                return
            poller.observe(watch, detail)
            self._outcome("verified")
        except DB_ERRORS:
            # admit kept the id when its watch could not be written (handled again when the
            # state can be); a watch written but not its first poll is due and polled anyway.
            self._outcome("held")
        except Exception:
            self._outcome("error")
            log.exception("vendor callback: cannot record the verified job", job_id=job_id)

    async def drain(self, grace: float) -> None:
        """Stop verifying: waiting ids are forgotten (logged), polls on their way get up to
        ``grace`` seconds (the limiter is closed by the poller's drain)."""
        if self._drainer is not None:
            self._drainer.cancel()
        if self._pending:
            log.warning("vendor callbacks not verified before stopping", count=len(self._pending))
            self._pending.clear()
        tasks = list(self._verifying.values())
        if self._drainer is not None:
            tasks.append(self._drainer)
        await settle(tasks, grace)
