"""The daemon's two defences against the wall clock: APScheduler's interval trigger made to
skip what a step missed, and a watch that notices steps."""

from __future__ import annotations

import time
from datetime import datetime

from apscheduler.triggers.interval import IntervalTrigger

#: A change of the wall clock against the monotonic clock by more than this between two
#: looks (a second apart) is a step (someone set the clock, a VM resumed), not NTP slewing.
CLOCK_STEP = 2.0


class SteadyInterval(IntervalTrigger):  # type: ignore[misc]  # untyped library
    """An interval trigger that skips, rather than walks, the runs a forward clock step missed.

    APScheduler 3 lists every missed run time before coalescing them: after a two-day step, a
    0.2 s job has 864,000, and the loop spends minutes computing them (seen: the daemon froze).
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        following: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        behind = following is not None and following < now - self.interval
        return now if previous_fire_time is not None and behind else following


class ClockWatch:
    """Notices steps of the system clock: the wall clock moving against the monotonic one."""

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()
        #: A step the stored schedule has not been moved by yet.
        self.pending = 0.0

    def step(self) -> float | None:
        offset = time.time() - time.monotonic()
        step = offset - self._offset
        self._offset = offset
        return step if abs(step) > CLOCK_STEP else None
