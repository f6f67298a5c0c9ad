"""The database's clock as a node estimates it between samples (issue 19, item 1): edge
cases a real server will not produce on demand (a sample that puts the time back a little,
a step of the server's own clock)."""

from __future__ import annotations

import pytest

from notifier.service.clock import DatabaseClock


class Clocks:
    def __init__(self) -> None:
        self.steady = 100.0
        self.wall = 5_000.0
        self.database = 1_000.0
        self.trip = 0.2

    def read(self) -> float:
        self.steady += self.trip / 2  # the server answers half-way through the round trip
        value = self.database
        self.steady += self.trip / 2
        return value


def test_the_estimate_runs_on_the_steady_clock_and_never_goes_back() -> None:
    c = Clocks()
    clock = DatabaseClock(c.read, steady=lambda: c.steady, wall=lambda: c.wall)
    sample = clock.take()
    assert (sample.database, sample.round_trip) == (pytest.approx(1_000.1), pytest.approx(0.2))
    assert sample.skew == pytest.approx(5_000.0 - 1_000.1)
    clock.apply(sample)
    c.wall += 3_600  # the host's wall clock steps: the estimate does not move
    c.steady += 2.0
    assert clock.now() == pytest.approx(1_002.1)
    # A sample half a second behind what was returned: held, not returned backwards.
    c.database = 1_001.5
    clock.apply(clock.take())
    assert clock.now() == pytest.approx(1_002.1)
    c.steady += 1.0
    assert clock.now() == pytest.approx(1_002.6)


def test_a_step_of_the_servers_own_clock_is_followed() -> None:
    c = Clocks()
    clock = DatabaseClock(c.read, steady=lambda: c.steady, wall=lambda: c.wall)
    clock.apply(clock.take())
    assert clock.now() > 1_000.0
    c.database = 400.0  # the server's clock was set back ten minutes
    clock.apply(clock.take())
    assert clock.now() < 500.0
