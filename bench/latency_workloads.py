"""The latency benchmark's workloads: jobs with their start, run time and outcome, and the
simulator settings each workload runs under, drawn from a seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: The simulator's lip-sync outcomes (the bench plays the application that made the jobs).
STATUS_SUCCESS, STATUS_FAILED = 20, 30

# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class JobPlan:
    """One job: created in the simulator (and watched) ``at`` seconds into the workload."""

    job_id: str
    at: float
    queue_s: float
    run_s: float
    outcome: int
    progress_points: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    jobs: tuple[JobPlan, ...]
    #: Simulator settings for the run (``VendorSimulator.set_faults``), e.g. a busy account.
    sim: tuple[tuple[str, float], ...] = ()

    @property
    def last_completion(self) -> float:
        return max(j.at + j.queue_s + j.run_s for j in self.jobs)


@dataclass(frozen=True)
class Scale:
    """Full size, or the ``--quick`` smoke run (fewer jobs, shorter times)."""

    count: float = 1.0
    time: float = 1.0


FULL = Scale()
QUICK = Scale(count=0.2, time=0.12)


def _n(count: int, scale: Scale) -> int:
    return max(5, round(count * scale.count))


def _job_id(rng: random.Random, workload: str, index: int) -> str:
    return f"{workload}-{index:04d}-{rng.getrandbits(32):08x}"


def _outcome(rng: random.Random) -> int:
    return STATUS_FAILED if rng.random() < 0.1 else STATUS_SUCCESS


def _standard_job(
    rng: random.Random, workload: str, index: int, at: float, scale: Scale
) -> JobPlan:
    """Queue U(0, 20) s, run U(10, 40) s, linear progress, ~10 % failures."""
    return JobPlan(
        job_id=_job_id(rng, workload, index),
        at=at,
        queue_s=rng.uniform(0, 20) * scale.time,
        run_s=rng.uniform(10, 40) * scale.time,
        outcome=_outcome(rng),
    )


def saturate(rng: random.Random, scale: Scale) -> Workload:
    n = _n(300, scale)
    jobs = tuple(_standard_job(rng, "saturate", i, 0.0, scale) for i in range(n))
    return Workload("saturate", f"{n} jobs at once, queue U(0,20) s, run U(10,40) s", jobs)


def steady(rng: random.Random, scale: Scale) -> Workload:
    rate = 4.0
    n = max(5, round(rate * 60 * scale.time))
    jobs = tuple(_standard_job(rng, "steady", i, i / rate, scale) for i in range(n))
    return Workload("steady", f"{n} jobs, {rate:g}/s for {n / rate:g} s", jobs)


def light(rng: random.Random, scale: Scale) -> Workload:
    n = 10
    jobs = tuple(_standard_job(rng, "light", i, 0.0, scale) for i in range(n))
    return Workload("light", f"{n} jobs at once", jobs)


def _jumpy_points(rng: random.Random) -> tuple[tuple[float, float], ...]:
    """Progress that climbs, stalls on a plateau, then jumps.

    ``[[0, 1], [a, y1], [b, y1], [b + 0.05, y2], [1, 99]]`` with random ``a < b``.
    """
    a = rng.uniform(0.05, 0.6)
    b = rng.uniform(a + 0.1, min(0.9, a + 0.6))
    y1 = rng.uniform(3, 90)
    y2 = rng.uniform(min(y1 + 5, 99), 99)
    return ((0.0, 1.0), (a, y1), (b, y1), (b + 0.05, y2), (1.0, 99.0))


def jumpy(rng: random.Random, scale: Scale) -> Workload:
    n = _n(150, scale)
    queue_kinds: list[Callable[[], float]] = [
        lambda: 0.0,
        lambda: rng.uniform(0.5, 1.5),
        lambda: rng.uniform(8, 12),
        lambda: rng.uniform(50, 70),
    ]
    jobs = []
    for i in range(n):
        job_id = _job_id(rng, "jumpy", i)
        queue_s = rng.choice(queue_kinds)() * scale.time
        jobs.append(
            JobPlan(
                job_id=job_id,
                at=0.0,
                queue_s=queue_s,
                run_s=rng.uniform(10, 40) * scale.time,
                outcome=_outcome(rng),
                progress_points=_jumpy_points(rng),
            )
        )
    return Workload("jumpy", f"{n} jobs, stalling/jumping progress, queue 0|1|10|60 s", tuple(jobs))


def burst(rng: random.Random, scale: Scale) -> Workload:
    n = _n(200, scale)
    jobs = tuple(
        JobPlan(
            job_id=_job_id(rng, "burst", i),
            at=0.0,
            queue_s=0.0,
            run_s=(30 + rng.uniform(0, 5)) * scale.time,
            outcome=_outcome(rng),
        )
        for i in range(n)
    )
    return Workload("burst", f"{n} jobs finishing within {5 * scale.time:g} s", jobs)


#: A busy account: other applications create jobs at this rate, the list call caps pages at
#: BUSY_PAGE_CAP and answers BUSY_LIST_LAG_S seconds behind the detail call.
BUSY_NOISE_PER_S = 5.0
BUSY_PAGE_CAP = 50
BUSY_LIST_LAG_S = 3.0


def busy(rng: random.Random, scale: Scale) -> Workload:
    n = _n(300, scale)
    jobs = tuple(_standard_job(rng, "busy", i, 0.0, scale) for i in range(n))
    sim = (
        ("noise_rate", BUSY_NOISE_PER_S),
        ("list_page_cap", float(BUSY_PAGE_CAP)),
        ("list_lag_s", BUSY_LIST_LAG_S),
    )
    description = (
        f"{n} jobs at once on an account with {BUSY_NOISE_PER_S:g} other jobs/s, list pages "
        f"capped at {BUSY_PAGE_CAP}, list {BUSY_LIST_LAG_S:g} s behind"
    )
    return Workload("busy", description, jobs, sim)


WORKLOADS: dict[str, Callable[[random.Random, Scale], Workload]] = {
    "saturate": saturate,
    "steady": steady,
    "light": light,
    "jumpy": jumpy,
    "burst": burst,
    "busy": busy,
}


def make_workload(name: str, seed: int, scale: Scale) -> Workload:
    """Deterministic for a (name, seed, scale): every variant gets the same jobs."""
    return WORKLOADS[name](random.Random(f"{seed}/{name}"), scale)
