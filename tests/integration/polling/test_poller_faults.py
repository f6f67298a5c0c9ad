"""The poller's failure paths, with the real store, limiter and vendor client against the real
simulator on 127.0.0.1: rejected credentials, a bug in a poll, and shutdown while polls wait
for the limiter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from notifier.models import JobDetail, WatchSpec
from tests.kit.poller import SETTINGS, Rig


async def polls_done() -> None:
    """Wait for the poll tasks the poller started (they are named ``poll <job id>``)."""
    current = asyncio.current_task()
    polls = [t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")]
    await asyncio.gather(*(t for t in polls if t is not current))


async def test_rejected_credentials_keep_the_watch_and_back_off(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig(secret_key="sk-wrong-0000000000000000")
    rig.sim.add_job("credjob01", queue_s=0, run_s=0)
    rig.store.add_watches([WatchSpec("credjob01")], "queue")
    before = time.time()
    with capture_logs() as logs:
        await rig.poller.tick()
        await polls_done()
    watch = rig.watch("credjob01")
    assert watch["state"] == "active"  # an operator can fix the config; the job is not lost
    assert watch["errors"] == 1
    assert "rejected app_id/secret_key" in watch["last_error"]
    assert watch["next_poll_at"] >= before + SETTINGS.min_interval * 0.9  # backs off
    (entry,) = [e for e in logs if e["log_level"] == "error"]
    assert entry["event"] == "vendor rejected our credentials"
    assert entry["job_id"] == "credjob01"
    assert "chanjing.secret_key" in entry["hint"]
    assert "sk-wrong" not in repr(logs)
    assert rig.sim.stats()["tokens_issued"] == 0
    assert rig.store.list_events() == []


async def test_a_bug_in_one_poll_is_logged_and_retried_and_others_carry_on(
    make_rig: Callable[..., Awaitable[Rig]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig()
    for job_id in ("buggyjob1", "finejob01"):
        rig.sim.add_job(job_id, queue_s=0, run_s=0)
    rig.store.add_watches([WatchSpec("buggyjob1"), WatchSpec("finejob01")], "queue")
    real_detail = rig.client.detail

    async def detail(job_id: str, **options: Any) -> JobDetail:
        # A vendor cannot make our own code raise something unexpected; this stands in for
        # such a bug, for one job only.
        if job_id == "buggyjob1":
            raise RuntimeError("boom")
        return await real_detail(job_id, **options)

    monkeypatch.setattr(rig.client, "detail", detail)
    with capture_logs() as logs:
        await rig.poller.tick()
        await polls_done()
    buggy, fine = rig.watch("buggyjob1"), rig.watch("finejob01")
    assert (buggy["state"], buggy["errors"]) == ("active", 1)
    assert buggy["last_error"] == "internal error: RuntimeError"
    assert fine["state"] == "succeeded"
    (crash,) = [e for e in logs if e["log_level"] == "error"]
    assert crash["event"] == "poll crashed; will retry"
    assert crash["job_id"] == "buggyjob1"
    assert crash.get("exc_info") is True


async def test_shutdown_while_polls_wait_for_the_limiter_sends_and_records_nothing(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig(qps=2)  # a poll every 0.5 s: the second waits
    for i in range(2):
        rig.sim.add_job(f"waitjob{i:02d}", queue_s=60, run_s=60)
    rig.store.add_watches([WatchSpec(f"waitjob{i:02d}") for i in range(2)], "queue")
    with capture_logs() as logs:
        await rig.poller.tick()
        assert rig.poller.in_flight == 2
        for _ in range(1000):  # until both callers are at the limiter
            if rig.limiter.waiting >= 2:
                break
            await asyncio.sleep(0.005)
        assert rig.limiter.waiting >= 2
        started = time.monotonic()
        await rig.poller.drain(grace=30)
        took = time.monotonic() - started
    assert took < 10  # released at once, not after the grace period
    assert rig.poller.in_flight == 0
    assert rig.limiter.waiting == 0
    # What had not been sent was not sent, and nothing was recorded as a failure.
    assert rig.sim.stats()["calls"] <= 1  # at most the token call that held the first slot
    for i in range(2):
        watch = rig.watch(f"waitjob{i:02d}")
        assert (watch["state"], watch["errors"], watch["polls"]) == ("active", 0, 0)
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []


async def test_a_vendor_string_with_a_lone_surrogate_still_makes_its_event(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    """Issue 18: a ``msg`` of "\\ud800" made the event body unencodable, so the watch stayed
    due and was polled again every tick for good."""
    rig = await make_rig()
    rig.sim.add_job("poisonjob", queue_s=0, run_s=0, outcome=30, msg="bad \ud800 audio")
    rig.store.add_watches([WatchSpec("poisonjob")], "queue")
    await rig.poller.tick()
    await polls_done()
    assert rig.watch("poisonjob")["state"] == "failed"
    (delivery,) = rig.store.due_deliveries("ops", time.time() + 60, 10)
    delivery.event.body.decode("utf-8")  # valid UTF-8, the surrogate escaped
    assert delivery.event.payload["data"]["msg"] == "bad \\ud800 audio"


async def test_a_watch_whose_answer_cannot_be_recorded_backs_off_alone(
    make_rig: Callable[..., Awaitable[Rig]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig()
    for job_id in ("stuckjob1", "finejob02"):
        rig.sim.add_job(job_id, queue_s=0, run_s=0)
    rig.store.add_watches([WatchSpec("stuckjob1"), WatchSpec("finejob02")], "queue")
    real = rig.store.record_terminal

    def record_terminal(detail: JobDetail, *args: Any) -> bool:
        # Stands in for any bug on one watch's recording (no server can make our code raise).
        if detail.id == "stuckjob1":
            raise ValueError("cannot record")
        return real(detail, *args)

    monkeypatch.setattr(rig.store, "record_terminal", record_terminal)
    before = time.time()
    with capture_logs() as logs:
        for _ in range(3):  # three ticks: the stuck one is not polled again each time
            await rig.poller.tick()
            await polls_done()
    stuck = rig.watch("stuckjob1")
    assert (stuck["state"], stuck["errors"]) == ("active", 1)
    assert stuck["next_poll_at"] >= before + SETTINGS.min_interval * 0.9
    assert rig.sim.stats()["jobs"]["stuckjob1"]["detail_calls"] == 1
    assert rig.watch("finejob02")["state"] == "succeeded"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "could not record the poll; will retry"
    ]
