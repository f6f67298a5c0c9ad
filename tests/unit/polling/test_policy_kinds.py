"""The adaptive policy for kinds that report no progress (TTS, AI creation): a typical run
after the job was first seen running is when it is expected; before it a few looks, after it
looks that back off with the lateness, and the usual bounds hold throughout."""

from __future__ import annotations

import itertools

import pytest

from notifier import kinds
from notifier.kinds import Kind, Phase
from notifier.models import JobDetail, JobMemory
from notifier.polling.policy import PollingSettings, adaptive

SETTINGS = PollingSettings(min_interval=1, max_interval=600, give_up_after=86400)
NO_PROGRESS = [k for k in kinds.KINDS.values() if k.progress_field is None]


def running(kind: Kind) -> JobDetail:
    return JobDetail("job-1", None, 0, "", kind=kind.name, phase=Phase.RUNNING)


def polls_until(kind: Kind, done_at: float) -> list[float]:
    """The times the policy polls a job that runs from 0 to ``done_at``, the first poll
    that sees it done last."""
    memory, now, polls = JobMemory(added_at=0.0), 0.0, []
    while now < done_at:
        polls.append(now)
        plan = adaptive(memory, running(kind), now, SETTINGS)
        assert SETTINGS.min_interval <= plan.deadline - now <= SETTINGS.max_interval
        assert plan.earliest <= plan.deadline
        memory, now = plan.memory, plan.deadline
    return [*polls, now]


def test_the_kinds_without_progress_are_tts_and_ai_creation() -> None:
    assert {k.name for k in NO_PROGRESS} == {"tts", "ai_creation"}


@pytest.mark.parametrize("kind", NO_PROGRESS, ids=lambda k: k.name)
def test_a_typical_job_is_seen_soon_after_it_ends_for_few_calls(kind: Kind) -> None:
    done_at = kind.typical_run
    polls = polls_until(kind, done_at)
    # The poll that sees it done comes within a min_interval of its end.
    assert polls[-1] - done_at <= SETTINGS.min_interval
    # Far fewer calls than one every min_interval.
    assert len(polls) <= max(8, done_at / SETTINGS.min_interval / 4)


@pytest.mark.parametrize("kind", NO_PROGRESS, ids=lambda k: k.name)
def test_a_long_job_backs_off_with_its_lateness(kind: Kind) -> None:
    done_at = 40 * kind.typical_run
    polls = polls_until(kind, done_at)
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    late = [g for p, g in zip(polls, gaps, strict=False) if p > 2 * kind.typical_run]
    assert late and late == sorted(late)  # waits grow with how late it is
    assert max(gaps) <= 0.25 * done_at + SETTINGS.min_interval
    assert len(polls) < 60


def test_a_kind_with_progress_still_predicts_from_its_rate() -> None:
    """Lip-sync's plan at 50% after 10 s of running lands near 20 s, not at a guess."""
    memory = JobMemory(added_at=0.0, first_running_at=0.0, first_running_progress=0)
    memory = JobMemory(**{**memory.__dict__, "last_poll_at": 5.0, "last_progress": 25})
    detail = JobDetail("job-1", 10, 50, "")
    plan = adaptive(memory, detail, 10.0, SETTINGS)
    assert 15.0 <= plan.deadline <= 25.0
