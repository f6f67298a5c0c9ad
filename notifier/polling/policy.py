"""When to poll a job next: small, pure functions of what we have seen of it.

A plan has two times. ``earliest``: polling before it is not worth a call (and never sooner
than ``min_interval``); with spare budget the poller may go then. ``deadline``: when the poll
is due; with a backlog the smallest deadlines go first. Each decision is O(1) here and
O(log n) in the store (two indexes).

The adaptive policy reads the vendor's progress: two samples while generating give a rate,
the rate gives a predicted completion, and the poll goes just after it — closer as the
baseline grows and the prediction firms up. Queued jobs tell us nothing about when they will
finish, so they are looked at rarely. Kinds that report no progress (TTS, AI creation) are
expected done a typical run (their kind's ``typical_run``) after they were first seen running.
Predictions that keep missing (progress that stalls and jumps) pull the job back to plain
round-robin at ``min_interval``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from notifier import kinds
from notifier.kinds import Phase
from notifier.models import JobDetail, JobMemory

#: Progress the vendor reports when a job is done.
DONE = 100.0
#: Poll this long after the predicted completion, to land after it rather than before.
LANDING_MARGIN = 0.3
#: Longest wait for the second sample of a generating job.
SECOND_SAMPLE_GAP = 5.0
#: How far ahead (as a multiple of the time we have watched it progress) we trust a rate.
TRUST = 1.5
#: A prediction is "firm" when its spread is at most this many seconds (or min_interval).
FIRM_SPREAD = 1.0


@dataclass(frozen=True)
class PollingSettings:
    min_interval: float
    max_interval: float
    give_up_after: float
    policy: str = "adaptive"
    #: How often round-robin would get round to each job now (active jobs / qps, at least
    #: min_interval). No plan waits longer: at worst the adaptive policy is round-robin.
    fair_interval: float = 0.0


@dataclass(frozen=True)
class Plan:
    earliest: float
    deadline: float
    memory: JobMemory


#: A policy: (memory, answer, now, settings) -> plan.
Policy = Callable[[JobMemory, JobDetail, float, PollingSettings], Plan]


def _bounded(
    earliest: float, deadline: float, now: float, s: PollingSettings
) -> tuple[float, float]:
    """Keep both times within [now + min_interval, now + max_interval] (and no later than a
    round-robin turn), earliest first."""
    low = now + s.min_interval
    high = now + min(
        s.max_interval, max(s.fair_interval, s.min_interval) if s.fair_interval else s.max_interval
    )
    deadline = min(max(deadline, low), high)
    earliest = min(max(earliest, low), deadline)
    return earliest, deadline


def round_robin(memory: JobMemory, detail: JobDetail, now: float, s: PollingSettings) -> Plan:
    """Every job every ``min_interval``; with a backlog the most overdue first: fair shares."""
    mem = replace(memory, last_poll_at=now, last_progress=detail.progress)
    earliest, deadline = _bounded(now, now, now, s)
    return Plan(earliest, deadline, mem)


def adaptive(memory: JobMemory, detail: JobDetail, now: float, s: PollingSettings) -> Plan:
    mem = replace(
        memory,
        last_poll_at=now,
        last_progress=detail.progress,
        create_time=detail.create_time or memory.create_time,
    )
    if not detail.terminal and (_early(memory, now) or _erratic(memory, detail, now)):
        mem = replace(mem, misses=mem.misses + 1)
    if detail.phase is Phase.QUEUED:
        return _plan_queued(mem, now, s)
    if detail.phase is not Phase.RUNNING:
        return Plan(*_bounded(now, now, now, s), mem)  # terminal: nothing more to plan
    kind = kinds.get(detail.kind)
    if kind.progress_field is None:
        return _plan_by_duration(mem, kind.typical_run, now, s)
    if mem.first_running_at is None or (
        mem.first_running_progress is not None and detail.progress < mem.first_running_progress
    ):
        # First sight of it generating (or progress went backwards: start again).
        mem = replace(mem, first_running_at=now, first_running_progress=detail.progress)
        return _plan_first_running(mem, detail.progress, now, s)
    return _plan_predicted(mem, detail.progress, now, s)


def _early(memory: JobMemory, now: float) -> bool:
    """We polled at the predicted completion and it was not done."""
    return memory.predicted_at is not None and now >= memory.predicted_at


def _erratic(memory: JobMemory, detail: JobDetail, now: float) -> bool:
    """Progress since the last poll disagrees with the rate since the first sample: a
    stall or a jump, so the linear prediction cannot be trusted (whichever way it errs)."""
    first_at, first_progress = memory.first_running_at, memory.first_running_progress
    last_at, last_progress = memory.last_poll_at, memory.last_progress
    if (
        detail.phase is not Phase.RUNNING
        or first_at is None
        or first_progress is None
        or last_at is None
        or last_progress is None
        or last_at <= first_at
        or now <= last_at
    ):
        return False
    overall = (detail.progress - first_progress) / (now - first_at)
    recent = (detail.progress - last_progress) / (now - last_at)
    # Whole-percent rounding: each rate is known to within 1 / its baseline.
    tolerance = 1 / (now - first_at) + 1 / (now - last_at) + 0.25 * abs(overall)
    return abs(recent - overall) > tolerance


def _plan_queued(mem: JobMemory, now: float, s: PollingSettings) -> Plan:
    # Nothing to predict from; look again after a while that grows with the time queued,
    # so long queues cost few calls. Low priority: the deadline leaves slack.
    since = now - (mem.create_time if mem.create_time else mem.added_at)
    wait = min(max(3 * s.min_interval, 0.25 * max(since, 0.0)), max(3 * s.min_interval, 10.0))
    mem = replace(
        mem,
        last_queued_at=now,
        predicted_at=None,
        first_running_at=None,
        first_running_progress=None,
    )
    return Plan(*_fallback(mem, now, s, now + wait, now + 2 * wait))


def _plan_by_duration(mem: JobMemory, typical: float, now: float, s: PollingSettings) -> Plan:
    # No progress to read (TTS, AI creation): expect it done a typical run after it was
    # first seen running, look a few times before that, and after it back off in step with
    # how late it is, so a long job costs few calls and a typical one is seen soon after.
    if mem.first_running_at is None:
        mem = replace(mem, first_running_at=now, first_running_progress=0)
    started = mem.first_running_at
    assert started is not None
    expected = started + typical
    if now < expected:
        deadline = min(expected, now + max(s.min_interval, (expected - now) / 2))
    else:
        deadline = now + max(s.min_interval, 0.25 * (now - started))
    mem = replace(mem, predicted_at=None)
    earliest, deadline, mem = _fallback(mem, now, s, now + s.min_interval, deadline)
    return Plan(earliest, deadline, mem)


def _plan_first_running(mem: JobMemory, progress: int, now: float, s: PollingSettings) -> Plan:
    # One sample: the job started after the last time we saw it queued (or its creation),
    # so its rate is at least progress / (now - that): completion is at the latest
    # `latest`. Look again halfway there for a second sample and a real rate.
    started_after = mem.last_queued_at or mem.create_time or mem.added_at
    running_for = max(now - started_after, s.min_interval)
    latest = now + (DONE - progress) * running_for / max(progress, 1)
    # The second sample: halfway to the latest completion, but soon enough that a fast job
    # is not missed by much (a few seconds give a usable rate).
    second = now + min((latest - now) / 2, max(2 * s.min_interval, SECOND_SAMPLE_GAP))
    mem = replace(mem, predicted_at=None)
    earliest, deadline, mem = _fallback(mem, now, s, now + s.min_interval, second)
    return Plan(earliest, deadline, mem)


def _plan_predicted(mem: JobMemory, progress: int, now: float, s: PollingSettings) -> Plan:
    assert mem.first_running_at is not None and mem.first_running_progress is not None
    baseline = now - mem.first_running_at
    gained = progress - mem.first_running_progress
    if gained <= 0 or baseline <= 0:
        # Stalled: no rate to speak of. Keep looking at a modest pace.
        mem = replace(mem, predicted_at=None)
        earliest, deadline, mem = _fallback(
            mem, now, s, now + s.min_interval, now + 2 * s.min_interval
        )
        return Plan(earliest, deadline, mem)
    # Progress is reported in whole percent: each sample is off by up to half a point,
    # so the rate is known to within 1 / baseline points per second.
    rate = gained / baseline
    slack = 1.0 / baseline
    remaining = DONE - progress
    soonest = now + remaining / (rate + slack)
    likely = now + remaining / rate
    latest = now + remaining / max(rate - slack, rate / 4)
    predicted: float | None = None
    if latest - soonest <= max(FIRM_SPREAD, s.min_interval):
        # Firm: poll just after it must be done. Not done then counts as a miss.
        predicted = latest + LANDING_MARGIN
        earliest, deadline = predicted, predicted
    else:
        # Not firm yet: a poll near the likely time either catches it or, failing that,
        # doubles the baseline and firms the prediction up.
        earliest, deadline = soonest, likely
    # Extrapolate no further ahead than we have watched it move: a stall or a jump hides
    # in the part we have not seen. A longer baseline earns a longer look ahead.
    horizon = now + max(s.min_interval, TRUST * baseline)
    if deadline > horizon:
        earliest, deadline, predicted = min(earliest, horizon), horizon, None
    mem = replace(mem, predicted_at=predicted)
    earliest, deadline, mem = _fallback(mem, now, s, earliest, deadline)
    return Plan(earliest, deadline, mem)


def _fallback(
    mem: JobMemory, now: float, s: PollingSettings, earliest: float, deadline: float
) -> tuple[float, float, JobMemory]:
    """After repeated misses, cap the wait towards round-robin (min_interval)."""
    if mem.misses >= 1:
        cap = now + s.min_interval * max(1.0, 8.0 / 2**mem.misses)
        deadline = min(deadline, cap)
        earliest = min(earliest, deadline)
        if mem.predicted_at is not None:
            mem = replace(mem, predicted_at=min(mem.predicted_at, deadline))
    earliest, deadline = _bounded(earliest, deadline, now, s)
    return earliest, deadline, mem


POLICIES: dict[str, Policy] = {"adaptive": adaptive, "round_robin": round_robin}


def plan_after_poll(
    memory: JobMemory, detail: JobDetail, now: float, settings: PollingSettings
) -> Plan:
    return POLICIES[settings.policy](memory, detail, now, settings)


def retry_delay(errors: int, settings: PollingSettings, jitter: float = 0.5) -> float:
    """Seconds until the next poll after ``errors`` failed ones in a row (this included).

    Exponential backoff from ``min_interval`` to ``max_interval``, spread by ``jitter`` in
    [0, 1) so failed jobs do not come back in lockstep.
    """
    backoff = settings.min_interval * 2.0 ** min(max(errors, 1) - 1, 16) * (0.9 + 0.2 * jitter)
    return min(settings.max_interval, max(settings.min_interval, backoff))
