"""The vendor callback's fast path: a detail poll now for a job that says it finished.

The callback is unsigned and may be forged, so it only moves a poll earlier; what the poll
answers is what gets recorded. Bounded so that a flood of callbacks (forged ones too) cannot
starve ordinary polling: fast polls go ahead of ordinary calls at the limiter, but at most
``FAST_SHARE`` of the budget per second takes that lane; a callback over it makes its watch
due now, and the watch takes its turn with the others at the next poll tick. The limiter
keeps the total within ``qps`` whatever happens here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from notifier.polling.poller import Poller
from notifier.polling.ratelimit import Share

#: Share of ``qps`` that fast-path polls may use (per second, in a burst of as many).
FAST_SHARE = 0.5


class FastPath:
    """Turns "poll this job now" requests into polls, within a share of the budget."""

    def __init__(self, poller: Poller, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.poller = poller
        self._share = Share(poller.limiter, FAST_SHARE, clock=clock)

    def request(self, job_id: str) -> str:
        """Poll ``job_id`` (an active watch) soon. Returns what was done:

        ``polling`` a priority poll started; ``in_flight`` one is on its way already;
        ``due`` made due now (over the fast share: the next tick polls it in turn);
        ``standby`` made due now for the vendor lease holder (this node may not call);
        ``finished`` not an active watch: nothing to do.
        """
        poller = self.poller
        store = poller.store
        if not poller.vendor.may_call():
            return "standby" if store.make_due(job_id) else "finished"
        if poller.polling(job_id):
            return "in_flight"
        summary = store.watch_summary(job_id)
        watch = store.get_watch(job_id)
        if summary is None or summary["state"] != "active" or watch is None:
            return "finished"
        if not self._share.take():
            return "due" if store.make_due(job_id) else "finished"
        poller.poll_now(watch)
        return "polling"
