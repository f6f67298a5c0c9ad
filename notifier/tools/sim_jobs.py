"""The simulator's jobs: each one's timeline (queued, running, terminal, and for a voice
perhaps expired later) on the simulator clock, in its kind's status values, and validation of
the job and fault descriptions a test or ``--jobs-file`` gives it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notifier.tools.sim_kinds import (
    FAILED,
    LIP_SYNC,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Moment,
    SimKind,
    Status,
)

#: Default progress curve while generating: linear from 1 % to 99 % over ``run_s``.
DEFAULT_PROGRESS_POINTS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (1.0, 99.0))

# --------------------------------------------------------------------------- job timeline


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear value of ``points`` (sorted by x) at ``x``, flat outside the range."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            if x1 == x0:
                return y1
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _round_half_up(value: float) -> int:
    # The epsilon keeps 44.99999999 (float noise from elapsed/run_s) from becoming 44.
    return math.floor(value + 0.5 + 1e-9)


def phase_at(
    elapsed: float,
    queue_s: float,
    run_s: float,
    succeeds: bool,
    progress_points: Sequence[tuple[float, float]] | None = None,
) -> tuple[str, float, int]:
    """``(phase, fraction of the run, progress)`` of a job ``elapsed`` seconds after creation.

    Queued (progress 0) while ``elapsed < queue_s``; running until ``queue_s + run_s`` with
    progress following ``progress_points`` (fraction of the run → percent, capped at 99); then
    terminal: progress 100 on success, 0 on failure.
    """
    points = progress_points or DEFAULT_PROGRESS_POINTS
    if elapsed < queue_s:
        return QUEUED, 0.0, 0
    if elapsed < queue_s + run_s:
        fraction = (elapsed - queue_s) / run_s
        progress = _round_half_up(interpolate(points, fraction))
        return RUNNING, fraction, min(99, max(0, progress))
    return (SUCCEEDED, 1.0, 100) if succeeds else (FAILED, 1.0, 0)


def status_at(
    elapsed: float,
    queue_s: float,
    run_s: float,
    outcome: int,
    progress_points: Sequence[tuple[float, float]] | None = None,
) -> tuple[int, int]:
    """``(status, progress)`` of a lip-sync job: 0 queued, 10 generating, then ``outcome``."""
    phase, _fraction, progress = phase_at(
        elapsed, queue_s, run_s, outcome == LIP_SYNC.success, progress_points
    )
    status = {QUEUED: LIP_SYNC.queued, RUNNING: LIP_SYNC.running[0]}.get(phase, outcome)
    return int(status), progress


@dataclass
class SimJob:
    """One job of one kind: its timeline on the simulator clock plus what was observed of it."""

    id: str
    created_at: float
    queue_s: float
    run_s: float
    #: The terminal status value, and whether it is a success (TTS ends in 9 either way).
    outcome: Status
    msg: str
    progress_points: tuple[tuple[float, float], ...] | None
    create_time: int
    callback: str | None
    seq: int
    kind: SimKind = LIP_SYNC
    succeeds: bool = True
    #: A success turns into this status ``later_s`` seconds after it finished (a voice that
    #: expires, 3, or is deleted, 99).
    later_status: Status | None = None
    later_s: float = 0.0
    #: The vendor answers 40000 ("record not found") to its first ``reject_first_calls``
    #: detail calls, and to every call in its first ``reject_for_s`` seconds (and leaves it
    #: out of list answers meanwhile): a vendor that does not know a job for a moment.
    reject_first_calls: int = 0
    reject_for_s: float = 0.0
    rejected_calls: int = 0
    first_terminal_seen_at: float | None = None
    detail_calls: int = 0
    callback_sent_at: float | None = None
    callback_result: str | None = None

    @property
    def completed_at(self) -> float:
        return self.created_at + self.queue_s + self.run_s

    def unknown(self, now: float) -> bool:
        """Whether the vendor does not (yet) admit to this job at ``now``."""
        return now - self.created_at < self.reject_for_s

    def reject_detail(self, now: float) -> bool:
        """Whether this detail call gets 40000; counts the rejection."""
        if self.unknown(now) or self.rejected_calls < self.reject_first_calls:
            self.rejected_calls += 1
            return True
        return False

    def moment(self, now: float) -> Moment:
        """The job at ``now``, in its kind's status values."""
        phase, fraction, progress = phase_at(
            now - self.created_at, self.queue_s, self.run_s, self.succeeds, self.progress_points
        )
        status: Status
        if phase == QUEUED:
            status = self.kind.queued
        elif phase == RUNNING:
            status = self.kind.running_status(fraction)
        elif (
            phase == SUCCEEDED
            and self.later_status is not None
            and now >= self.completed_at + self.later_s
        ):
            status = self.later_status
        else:
            status = self.outcome
        msg = self.msg if phase == FAILED else ""
        return Moment(self.id, phase, status, progress, msg, self.create_time)

    def state(self, now: float) -> tuple[Status, int]:
        """``(status, progress)`` at ``now``."""
        moment = self.moment(now)
        return moment.status, moment.progress

    def phase(self, now: float) -> str:
        return self.moment(now).phase

    def detail(self, now: float) -> dict[str, Any]:
        """The ``data`` of a detail answer at ``now``."""
        return self.kind.render(self.moment(now))


# --------------------------------------------------------------------------- validation


class SimInputError(ValueError):
    """A job or fault description the simulator cannot accept (message says which field)."""


def number(name: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimInputError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise SimInputError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return float(value)


def positive_int(name: str, value: Any, default: int, maximum: int | None = None) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SimInputError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise SimInputError(f"{name} must be at most {maximum}, got {value!r}")
    return value


def progress_points_of(value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list | tuple) or not value:
        raise SimInputError("progress_points must be a non-empty list of [fraction, progress]")
    points: list[tuple[float, float]] = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise SimInputError(f"progress_points entry {item!r} is not a [fraction, progress]")
        x = number("progress_points fraction", item[0])
        y = number("progress_points progress", item[1])
        if x > 1 or y > 100:
            raise SimInputError(f"progress_points entry {item!r}: fraction <= 1, progress <= 100")
        if points and x < points[-1][0]:
            raise SimInputError("progress_points must be sorted by fraction")
        points.append((x, y))
    return tuple(points)


def outcome_of(kind: SimKind, value: Any) -> tuple[str, Status]:
    """``(phase, status)`` of an ``outcome`` given for a job of ``kind``."""
    try:
        return kind.outcome(value)
    except ValueError as exc:
        raise SimInputError(str(exc)) from None


def later_of(kind: SimKind, value: Any) -> Status | None:
    """The status a success turns into later, if the kind has such (a voice's 3 or 99)."""
    if value is None:
        return None
    for status in kind.later:
        if value == status and not isinstance(value, bool):
            return status
    if not kind.later:
        raise SimInputError(
            f"a {kind.name} job does not change after it finished (no later_status)"
        )
    raise SimInputError(
        f"later_status of a {kind.name} job must be one of {list(kind.later)}, got {value!r}"
    )


def callback_url_of(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise SimInputError(f"callback must be an http(s) URL, got {value!r}")
    return value
