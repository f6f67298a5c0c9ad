"""The callback fast path's bounds, on a real Poller and store with a FakeClock: one poll per
job however many callbacks, at most half of ``qps`` a second (a burst of as many), the rest
made due; a finished watch is left alone."""

from __future__ import annotations

from notifier.models import WatchSpec
from notifier.polling.fastpath import FastPath
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import RateLimiter
from notifier.polling.vendor import VendorClient
from tests.conftest import FakeClock, StoreFactory
from tests.unit.store.test_store import detail, event


async def test_one_poll_per_job_and_half_the_budget(make_store: StoreFactory) -> None:
    clock = FakeClock(1000.0)
    store = make_store(clock=clock)
    limiter = RateLimiter(10)
    # Nothing listens on port 9: the polls started here fail and are recorded as errors.
    vendor = VendorClient(
        base_url="http://127.0.0.1:9", app_id="a", secret_key="s", limiter=limiter, store=store
    )
    poller = Poller(store, vendor, limiter, PollingSettings(30.0, 60.0, 3600.0), [], clock=clock)
    fast = FastPath(poller, clock=clock)
    ids = [f"job{n}" for n in range(8)]
    store.add_watches([WatchSpec(i) for i in [*ids, "done"]], "queue")
    store.record_terminal(detail("done", 20, 100), event("done"), [])
    try:
        assert fast.request("done") == "finished"
        assert fast.request("job0") == "polling"
        assert fast.request("job0") == "in_flight"  # a second callback: the same poll
        assert [fast.request(i) for i in ids[1:]] == ["polling"] * 4 + ["due"] * 3
        clock.advance(0.2)  # refilled at 5 a second
        assert fast.request("job5") == "polling"
        assert fast.request("job6") == "due"
        limiter.reconfigure(4)  # a reload: the share follows qps
        clock.advance(10)
        assert [fast.request(i) for i in ("job7", "job6", "job5")] == [
            "polling",
            "polling",
            "in_flight",
        ]
    finally:
        await poller.drain(0)
        await vendor.aclose()
