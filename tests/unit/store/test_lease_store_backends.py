"""The vendor lease on both backends, on the database's real clock: a zero-length lease is
expired by the next statement, so expiry needs no waiting."""

from __future__ import annotations

from tests.kit import StoreFactory


def test_lease_semantics_on_the_database_clock(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    assert a.lease_holder("vendor") is None
    granted = a.acquire_lease("vendor", "node-a", 60.0)
    assert granted is not None and 59.0 < granted[0] <= 60.0
    assert b.acquire_lease("vendor", "node-b", 60.0) is None  # held by a
    holder = b.lease_holder("vendor")
    assert holder is not None and holder[0] == "node-a" and 0 < holder[1] <= 60.0
    assert a.acquire_lease("vendor", "node-a", 30.0) is not None  # renewed by its holder
    assert b.acquire_lease("vendor", "node-b", 60.0, force=True) is not None  # forced
    assert a.acquire_lease("vendor", "node-a", 60.0) is None
    # A release lets it go at once; only the holder can release.
    assert not a.release_lease("vendor", "node-a")
    assert b.release_lease("vendor", "node-b")
    assert b.lease_holder("vendor") is None
    taken = a.acquire_lease("vendor", "node-a", 0.0)  # taken, and already lapsed
    assert taken is not None and taken[1] == "node-b"  # the holder before
    again = b.acquire_lease("vendor", "node-b", 60.0)
    assert again is not None and again[1] == "node-a"
