"""The vendor lease on a real database whose clock a test pins."""

from __future__ import annotations

from notifier.store import Store
from tests.kit import FakeClock

#: SQLite keeps its clock as a Julian day number (a double): about 50 µs apart at today's
#: dates. Steps across an expiry go this much past it.
EPS = 0.001


def pin_db_clock(store: Store, clock: FakeClock) -> None:
    """Make the database's clock (``julianday('now')`` in the lease statements) read ``clock``:
    SQLite lets an application function replace a built-in one, so the real SQL runs."""

    def julianday(value: str) -> float:
        assert value == "now"
        return clock() / 86400.0 + 2440587.5

    store._db.create_function("julianday", 1, julianday)
