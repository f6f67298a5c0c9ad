"""The polling policies on recorded job timelines, one job at a time (no budget limit)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.models import JobDetail, JobMemory
from notifier.polling.policy import (
    LANDING_MARGIN,
    PollingSettings,
    adaptive,
    plan_after_poll,
    retry_delay,
    round_robin,
)

SETTINGS = PollingSettings(min_interval=1, max_interval=60, give_up_after=86400)

# A timeline: seconds since creation -> (status, progress), as the vendor reports it.
Timeline = Callable[[float], tuple[int, int]]


def linear(queue: float, run: float) -> Timeline:
    def at(t: float) -> tuple[int, int]:
        if t < queue:
            return 0, 0
        if t >= queue + run:
            return 20, 100
        return 10, max(1, min(99, round(1 + 98 * (t - queue) / run)))

    return at


def recorded(points: list[tuple[float, int, int]], done_at: float) -> Timeline:
    """Samples as a vendor gave them: the last sample at or before t holds."""

    def at(t: float) -> tuple[int, int]:
        if t >= done_at:
            return 20, 100
        status, progress = 0, 0
        for when, s, p in points:
            if when <= t:
                status, progress = s, p
        return status, progress

    return at


@dataclass
class Run:
    polls: list[tuple[float, int, int]]
    latency: float
    memory: JobMemory


def follow(timeline: Timeline, done_at: float, policy: str = "adaptive") -> Run:
    """Poll one job whenever the policy's plan says it is due, until an answer is terminal
    (succeeded or failed); return what happened."""
    settings = PollingSettings(1, 60, 86400, policy)
    memory = JobMemory(added_at=0.0, create_time=0)
    now, polls = 0.0, []
    for _ in range(500):
        status, progress = timeline(now)
        polls.append((now, status, progress))
        detail = JobDetail("j", status, progress, "", "", "", 0, 0)
        if detail.terminal:
            return Run(polls, now - done_at, memory)
        plan = plan_after_poll(memory, detail, now, settings)
        memory = plan.memory
        now = plan.deadline
    raise AssertionError("never saw it finish")


def test_linear_job_is_caught_right_after_it_finishes_with_few_polls() -> None:
    run = follow(linear(queue=5, run=30), done_at=35)
    assert 0 <= run.latency <= LANDING_MARGIN + 1.0, run.polls
    # Queued checks, a few samples while generating, one poll at completion.
    assert len(run.polls) <= 10, run.polls
    assert run.memory.misses == 0


def test_round_robin_polls_every_min_interval() -> None:
    run = follow(linear(queue=5, run=30), done_at=35, policy="round_robin")
    gaps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(run.polls)}
    assert gaps == {1.0}
    assert run.latency < 1.0


def test_long_queue_is_watched_rarely() -> None:
    run = follow(linear(queue=120, run=20), done_at=140)
    queued_polls = [p for p in run.polls if p[1] == 0]
    assert len(queued_polls) <= 16  # not 120 as at min_interval
    assert run.latency <= 3.0


def test_stall_then_jump_falls_back_towards_round_robin() -> None:
    # Recorded from a job that crawled, stalled at 40% for 20 s, then jumped to 95%.
    points = [(0, 0, 0), (2, 10, 1), (10, 10, 20), (14, 10, 40), (34, 10, 40), (35, 10, 95)]
    run = follow(recorded(points, done_at=37), done_at=37)
    assert run.latency <= 4.0, run.polls
    # It never extrapolates further than it has watched the job move.
    times = [t for t, _, _ in run.polls]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 20.0, run.polls


def test_no_wait_beyond_a_round_robin_turn() -> None:
    settings = PollingSettings(1, 60, 86400, "adaptive", fair_interval=7.0)
    memory = JobMemory(
        added_at=0.0,
        create_time=0,
        first_running_at=0.0,
        first_running_progress=1,
        last_poll_at=0.0,
        last_progress=1,
    )
    plan = adaptive(memory, JobDetail("j", 10, 30, "", "", "", 0, 0), 100.0, settings)
    assert plan.deadline <= 107.0


def test_first_poll_already_terminal_needs_no_plan() -> None:
    # Done before we ever looked: the first answer is terminal, so one poll and no plan.
    run = follow(linear(queue=0, run=0), done_at=0)
    assert run.polls == [(0.0, 20, 100)]
    assert run.memory == JobMemory(added_at=0.0, create_time=0)


def test_a_job_that_fails_while_queued_ends_the_polling() -> None:
    def fails_at_10(t: float) -> tuple[int, int]:
        return (30, 0) if t >= 10 else (0, 0)

    run = follow(fails_at_10, done_at=10)
    assert run.polls[-1][1] == 30
    assert all(status == 0 for _, status, _ in run.polls[:-1])
    assert 0 <= run.latency <= 10  # queued jobs are looked at rarely, but not never


@given(
    samples=st.lists(
        st.tuples(
            st.floats(0.01, 30),  # seconds since the previous poll
            st.sampled_from([0, 10]),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=30,
    ),
    policy=st.sampled_from(["adaptive", "round_robin"]),
)
def test_plans_always_respect_min_and_max_interval(
    samples: list[tuple[float, int, int]], policy: str
) -> None:
    settings = PollingSettings(2, 50, 86400, policy)
    memory, now = JobMemory(added_at=0.0, create_time=0), 0.0
    for gap, status, progress in samples:
        now += gap
        plan = plan_after_poll(
            memory, JobDetail("j", status, progress, "", "", "", 0, 0), now, settings
        )
        assert now + 2 <= plan.earliest <= plan.deadline <= now + 50
        memory = plan.memory


def test_prediction_misses_are_counted() -> None:
    memory = JobMemory(added_at=0.0, create_time=0, predicted_at=10.0)
    plan = adaptive(memory, JobDetail("j", 10, 50, "", "", "", 0, 0), 11.0, SETTINGS)
    assert plan.memory.misses == 1
    # Round-robin keeps no predictions, so it counts no misses: it polls again in min_interval.
    rr = round_robin(memory, JobDetail("j", 10, 50, "", "", "", 0, 0), 11.0, SETTINGS)
    assert rr.memory.misses == 0
    assert (rr.earliest, rr.deadline) == (12.0, 12.0)
    assert (rr.memory.last_poll_at, rr.memory.last_progress) == (11.0, 50)


@pytest.mark.parametrize("errors", range(1, 12))
def test_retry_delay_backs_off_within_bounds(errors: int) -> None:
    delay = retry_delay(errors, SETTINGS, 0.5)
    assert SETTINGS.min_interval <= delay <= SETTINGS.max_interval
    assert delay == min(60, 2 ** (errors - 1))
