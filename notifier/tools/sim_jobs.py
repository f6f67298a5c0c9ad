"""The simulator's jobs: each one's timeline (queued, generating, terminal) on the simulator
clock, and validation of the job and fault descriptions a test or ``--jobs-file`` gives it."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier.models import STATUS_FAILED, STATUS_GENERATING, STATUS_QUEUED, STATUS_SUCCESS

CDN_BASE = "https://cdn.example.invalid/videos"
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


def status_at(
    elapsed: float,
    queue_s: float,
    run_s: float,
    outcome: int,
    progress_points: Sequence[tuple[float, float]] | None = None,
) -> tuple[int, int]:
    """``(status, progress)`` of a job ``elapsed`` seconds after creation.

    Queued (0, progress 0) while ``elapsed < queue_s``; generating (10) until
    ``queue_s + run_s`` with progress following ``progress_points`` (fraction of the run →
    percent, capped at 99); then the terminal ``outcome``: progress 100 on success, 0 on failure.
    """
    points = progress_points or DEFAULT_PROGRESS_POINTS
    if elapsed < queue_s:
        return STATUS_QUEUED, 0
    if elapsed < queue_s + run_s:
        fraction = (elapsed - queue_s) / run_s
        progress = _round_half_up(interpolate(points, fraction))
        return STATUS_GENERATING, min(99, max(0, progress))
    return outcome, 100 if outcome == STATUS_SUCCESS else 0


def _duration_ms(job_id: str) -> int:
    """A stable, plausible video length (5..60 s) derived from the id."""
    digest = hashlib.sha256(job_id.encode()).digest()
    return 5_000 + int.from_bytes(digest[:4], "big") % 55_001


@dataclass
class SimJob:
    """One lip-sync job: its timeline on the simulator clock plus what was observed of it."""

    id: str
    created_at: float
    queue_s: float
    run_s: float
    outcome: int
    msg: str
    progress_points: tuple[tuple[float, float], ...] | None
    create_time: int
    callback: str | None
    seq: int
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
    duration: int = field(init=False)

    def __post_init__(self) -> None:
        self.duration = _duration_ms(self.id)

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

    def state(self, now: float) -> tuple[int, int]:
        return status_at(
            now - self.created_at, self.queue_s, self.run_s, self.outcome, self.progress_points
        )

    def detail(self, now: float) -> dict[str, Any]:
        """The ``data`` of a detail answer at ``now``."""
        status, progress = self.state(now)
        done = status == STATUS_SUCCESS
        if done:
            msg = "success"
        elif status == STATUS_FAILED:
            msg = self.msg
        else:
            msg = ""
        return {
            "id": self.id,
            "status": status,
            "progress": progress,
            "msg": msg,
            "video_url": f"{CDN_BASE}/{self.id}.mp4" if done else "",
            "preview_url": f"{CDN_BASE}/{self.id}.jpg" if done else "",
            "duration": self.duration if done else 0,
            "create_time": self.create_time,
        }


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


def outcome_of(value: Any) -> int:
    if value not in (STATUS_SUCCESS, STATUS_FAILED) or isinstance(value, bool):
        raise SimInputError(f"outcome must be 20 (success) or 30 (failed), got {value!r}")
    return int(value)


def callback_url_of(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise SimInputError(f"callback must be an http(s) URL, got {value!r}")
    return value
