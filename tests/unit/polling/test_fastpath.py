"""The callback fast path's bounds, on a real Poller and store with a FakeClock: one poll per
job however many callbacks, at most half of ``qps`` a second (a burst of as many), the rest
made due; a finished watch is left alone."""

from __future__ import annotations

import asyncio

import pytest

from notifier.models import JobDetail, WatchSpec
from notifier.polling import fastpath
from notifier.polling.fastpath import FastPath
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from tests.kit import FakeClock, StoreFactory
from tests.kit.poller import poller_settings
from tests.kit.store import detail, event
from tests.kit.vendor import vendor_client

#: Polls 30 s apart: a test's watches are due only when it says so.
SLOW = poller_settings(PollingSettings(30.0, 60.0, 3600.0), [])


async def test_one_poll_per_job_and_half_the_budget(make_store: StoreFactory) -> None:
    clock = FakeClock(1000.0)
    store = make_store(clock=clock)
    limiter = RateLimiter(LimiterSettings(10))
    # Nothing listens on port 9: the polls started here fail and are recorded as errors.
    vendor = vendor_client("http://127.0.0.1:9", store, limiter)
    poller = Poller(store, vendor, limiter, SLOW, clock=clock)
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
        limiter.configure(LimiterSettings(4))  # a reload: the share follows qps
        clock.advance(10)
        assert [fast.request(i) for i in ("job7", "job6", "job5")] == [
            "polling",
            "polling",
            "in_flight",
        ]
    finally:
        await poller.drain(0)
        await vendor.aclose()


async def test_an_unwatched_id_is_checked_first_and_watched_only_if_the_vendor_knows_it(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18, item 10: an id first seen in a callback costs one fast-lane poll; only an
    answer for it makes the watch (recorded as that poll); a 40000 makes nothing. Over the
    share it waits (newest first, at most PENDING_MAX, the oldest dropped), never lost."""
    clock = FakeClock(1000.0)
    store = make_store(clock=clock)
    limiter = RateLimiter(LimiterSettings(10))
    vendor = vendor_client("http://127.0.0.1:9", store, limiter)
    poller = Poller(store, vendor, limiter, SLOW, clock=clock)
    outcomes: list[str] = []
    fast = FastPath(poller, clock=clock, outcomes=outcomes.append)
    asked: list[str] = []
    real = {"real1": 10, "done1": 20, "late1": 0}

    async def probe(job_id: str, _kind: str = "lip_sync") -> JobDetail | None:
        asked.append(job_id)
        await asyncio.sleep(0)
        status = real.get(job_id)
        return None if status is None else detail(job_id, status, 100 if status == 20 else 40)

    monkeypatch.setattr(poller, "probe", probe)

    def admit(job_id: str) -> bool:
        store.add_watches([WatchSpec(job_id, {"via": "callback"})], "queue")
        return True

    async def settled() -> None:
        for _ in range(50):
            await asyncio.sleep(0.02)
            if not fast._verifying and not fast.pending:
                return

    try:
        assert fast.verify("forged1", "lip_sync", admit) == "verifying"
        assert fast.verify("forged1", "lip_sync", admit) == "in_flight"  # the same check
        assert fast.verify("real1", "lip_sync", admit) == "verifying"
        assert fast.verify("done1", "lip_sync", admit) == "verifying"
        await settled()
        assert store.watch_summary("forged1") is None
        real1 = store.get_watch("real1")
        assert real1 is not None and (real1.polls, real1.status) == (1, 10)
        assert real1.labels == {"via": "callback"}
        summary = store.watch_summary("done1")
        assert summary is not None and summary["state"] == "succeeded"  # its event at once
        assert poller.events == 1
        assert sorted(outcomes) == ["unknown_job", "verified", "verified"]
        # Two places left in the burst of 5; then callbacks wait, newest checked first.
        assert [fast.verify(i, "lip_sync", admit) for i in ("forged2", "forged3")] == [
            "verifying"
        ] * 2
        assert fast.verify("late1", "lip_sync", admit) == "pending"
        assert fast.verify("forged4", "lip_sync", admit) == "pending"
        assert fast.verify("late1", "lip_sync", admit) == "pending"  # once in the set
        clock.advance(1)  # the share refills
        await settled()
        assert asked[-2:] == ["forged4", "late1"]
        assert store.get_watch("late1") is not None  # not lost
        assert store.watch_summary("forged4") is None
        # Past PENDING_MAX the oldest waiting are dropped, counted.
        monkeypatch.setattr(fastpath, "PENDING_MAX", 3)
        outcomes.clear()
        for _ in range(10):
            fast._share.take()  # spend the share
        ids = [f"wait{n}" for n in range(5)]
        assert [fast.verify(i, "lip_sync", admit) for i in ids] == ["pending"] * 5
        assert outcomes == ["dropped", "dropped"] and fast.pending == 3
        clock.advance(10)
        await settled()
        assert asked[-3:] == ["wait4", "wait3", "wait2"]
    finally:
        await fast.drain(0)
        await poller.drain(0)
        await vendor.aclose()


async def test_a_standby_watches_unchecked_within_the_share(make_store: StoreFactory) -> None:
    """A node without the vendor lease cannot check: the watch is made and made due for the
    lease holder (its 40000s fail a forged one), at the share's pace."""
    clock = FakeClock(1000.0)
    store = make_store(clock=clock)
    limiter = RateLimiter(LimiterSettings(10))
    vendor = vendor_client("http://127.0.0.1:9", store, limiter)
    vendor.may_call = lambda: False  # type: ignore[method-assign]
    poller = Poller(store, vendor, limiter, SLOW, clock=clock)
    fast = FastPath(poller, clock=clock)

    def admit(job_id: str) -> bool:
        store.add_watches([WatchSpec(job_id)], "queue")
        return True

    try:
        ids = [f"sb{n}" for n in range(7)]
        assert [fast.verify(i, "lip_sync", admit) for i in ids] == ["standby"] * 5 + ["pending"] * 2
        assert store.watch_summary("sb4") is not None and store.watch_summary("sb5") is None
    finally:
        await fast.drain(0)
        await poller.drain(0)
        await vendor.aclose()
