"""The vendor lease in the state database: two nodes (two connections) on one SQLite file,
with the database's own clock pinned to a FakeClock, so expiry is exact and instant."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifier.store import Store
from tests.kit import FakeClock
from tests.kit.lease import EPS, pin_db_clock


def near(value: float) -> object:
    return pytest.approx(value, abs=EPS)


@pytest.fixture
def db_clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


def two_nodes(path: Path, db_clock: FakeClock, *clocks: Callable[[], float]) -> list[Store]:
    """Two connections to one file (two nodes), on one pinned database clock."""
    stores = [Store(path, clock=clock) for clock in clocks or (time.time, time.time)]
    for store in stores:
        pin_db_clock(store, db_clock)
    return stores


@pytest.fixture
def nodes(tmp_path: Path, db_clock: FakeClock) -> Iterator[tuple[Store, Store]]:
    a, b = two_nodes(tmp_path / "state.db", db_clock)
    yield a, b
    a.close()
    b.close()


def test_taken_renewed_and_refused_while_held(
    nodes: tuple[Store, Store], db_clock: FakeClock
) -> None:
    a, b = nodes
    assert b.lease_holder("vendor") is None
    assert a.acquire_lease("vendor", "A", 10.0) == (near(10.0), None)
    assert b.acquire_lease("vendor", "B", 10.0) is None
    db_clock.advance(6.0)
    holder = b.lease_holder("vendor")
    assert holder is not None and holder[0] == "A" and holder[1] == near(4.0)
    # A renewal runs the expiry from now, on the database's clock.
    assert a.acquire_lease("vendor", "A", 10.0) == (near(10.0), None)
    db_clock.advance(9.0)
    assert b.acquire_lease("vendor", "B", 10.0) is None
    holder = a.lease_holder("vendor")
    assert holder is not None and holder[1] == near(1.0)


def test_taken_by_another_owner_only_once_expired(
    nodes: tuple[Store, Store], db_clock: FakeClock
) -> None:
    a, b = nodes
    a.acquire_lease("vendor", "A", 10.0)
    db_clock.advance(9.99)
    assert b.acquire_lease("vendor", "B", 10.0) is None
    db_clock.advance(0.01 + EPS)
    assert a.lease_holder("vendor") is None  # expired: nobody holds it
    assert b.acquire_lease("vendor", "B", 10.0) == (near(10.0), "A")
    # The old holder, back, is refused: it must not extend a lease it lost.
    assert a.acquire_lease("vendor", "A", 10.0) is None
    holder = a.lease_holder("vendor")
    assert holder is not None and holder[0] == "B"


def test_expiry_is_on_the_database_clock_not_the_callers(
    tmp_path: Path, db_clock: FakeClock
) -> None:
    """Each Store has its own (here wildly different) clock; the lease ignores both."""
    a, b = two_nodes(tmp_path / "state.db", db_clock, lambda: 0.0, lambda: 4e9)
    assert a.acquire_lease("vendor", "A", 10.0) is not None
    assert b.acquire_lease("vendor", "B", 10.0) is None
    db_clock.advance(10.0 + EPS)
    assert b.acquire_lease("vendor", "B", 10.0) is not None
    a.close()
    b.close()


def test_release_frees_it_at_once_or_after_a_holdoff(
    nodes: tuple[Store, Store], db_clock: FakeClock
) -> None:
    a, b = nodes
    a.acquire_lease("vendor", "A", 10.0)
    assert b.release_lease("vendor", "B") is False  # not B's to release
    assert a.release_lease("vendor", "A") is True
    assert a.release_lease("vendor", "A") is False  # already free
    assert b.acquire_lease("vendor", "B", 10.0) == (near(10.0), "A")

    assert b.release_lease("vendor", "B", holdoff=2.0) is True
    db_clock.advance(1.99)
    assert a.acquire_lease("vendor", "A", 10.0) is None
    db_clock.advance(0.01 + EPS)
    assert a.acquire_lease("vendor", "A", 10.0) == (near(10.0), "B")


def test_release_never_extends_the_lease(nodes: tuple[Store, Store], db_clock: FakeClock) -> None:
    a, b = nodes
    a.acquire_lease("vendor", "A", 10.0)
    db_clock.advance(9.0)
    assert a.release_lease("vendor", "A", holdoff=2.0) is False  # 1 s left: kept, not 2
    db_clock.advance(1.0 + EPS)
    assert b.acquire_lease("vendor", "B", 10.0) is not None


def test_a_take_after_a_lapse_is_a_new_tenure(
    nodes: tuple[Store, Store], db_clock: FakeClock
) -> None:
    """Renewals keep acquired_at and previous_owner; taking it again after it lapsed (even
    by the same owner) starts a new tenure, so the log names who held it before."""
    a, b = nodes

    def row() -> tuple[float, str | None]:
        found = a._db.execute("SELECT acquired_at, previous_owner FROM leases").fetchone()
        return float(found[0]), found[1]

    a.acquire_lease("vendor", "A", 10.0)
    db_clock.advance(10.0 + EPS)
    b.acquire_lease("vendor", "B", 10.0)
    assert row() == (near(db_clock()), "A")
    taken = db_clock()
    db_clock.advance(5.0)
    assert b.acquire_lease("vendor", "B", 10.0) == (near(10.0), "A")
    assert row() == (near(taken), "A")  # a renewal
    db_clock.advance(10.0 + EPS)
    assert b.acquire_lease("vendor", "B", 10.0) == (near(10.0), "B")  # lapsed, retaken
    assert row() == (near(db_clock()), "B")


def test_force_takes_it_from_any_holder(nodes: tuple[Store, Store]) -> None:
    """Only for a daemon that knows it is alone (the SQLite instance lock): its crashed
    predecessor's lease must not hold it up."""
    a, b = nodes
    b.acquire_lease("vendor", "old:1", 10.0)
    assert a.acquire_lease("vendor", "new:2", 10.0) is None
    assert a.acquire_lease("vendor", "new:2", 10.0, force=True) == (near(10.0), "old:1")
    holder = b.lease_holder("vendor")
    assert holder is not None and holder[0] == "new:2"


def test_real_database_clock_without_pinning(tmp_path: Path) -> None:
    """The SQL's own clock expression: a fresh lease has its whole ttl left."""
    with Store(tmp_path / "s.db") as a, Store(tmp_path / "s.db") as b:
        granted = a.acquire_lease("vendor", "A", 30.0)
        assert granted is not None and granted[0] == pytest.approx(30.0)
        holder = b.lease_holder("vendor")
        assert holder is not None and holder[0] == "A" and 0 < holder[1] <= 30.0
        assert b.acquire_lease("vendor", "B", 30.0) is None
