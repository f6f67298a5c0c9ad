"""The lease keeper: deadlines on a fake steady clock, the database's clock pinned to a
FakeClock, two nodes as two keepers on two connections to one real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from notifier.polling import lease as lease_module
from notifier.polling.lease import MARGIN, LeaseKeeper, LeaseLost, LeaseSettings
from notifier.store import Store
from tests.kit import FakeClock, until
from tests.kit.lease import EPS, pin_db_clock

TTL = 10.0


@pytest.fixture
def db_clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def open_store(tmp_path: Path, db_clock: FakeClock) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = Store(tmp_path / "state.db", **kwargs)
        pin_db_clock(store, db_clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def keeper(store: Store, node: str, **kwargs: Any) -> tuple[LeaseKeeper, FakeClock]:
    steady = FakeClock(1000.0)
    return LeaseKeeper(store, node, LeaseSettings(TTL), clock=steady, **kwargs), steady


def events(logs: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"].startswith(prefix)]


class RoundTrip:
    """The real store, with time passing on the steady clock on the way to the database and
    back (a slow network, or a process frozen while its statement was in flight)."""

    def __init__(self, store: Store, steady: FakeClock, there: float, back: float) -> None:
        self.store, self.steady, self.there, self.back = store, steady, there, back

    def acquire_lease(self, *args: Any, **kwargs: Any) -> Any:
        if args[0] != "vendor":  # the keeper's presence row: no time passes for it here
            return self.store.acquire_lease(*args, **kwargs)
        self.steady.advance(self.there)
        try:
            return self.store.acquire_lease(*args, **kwargs)
        finally:
            self.steady.advance(self.back)

    def release_lease(self, *args: Any, **kwargs: Any) -> bool:
        return self.store.release_lease(*args, **kwargs)

    def lease_holder(self, name: str) -> Any:
        return self.store.lease_holder(name)

    def lease_advertise(self, name: str) -> str | None:
        return self.store.lease_advertise(name)

    def lease_owner(self, name: str) -> Any:
        return self.store.lease_owner(name)


async def test_deadline_is_measured_from_before_the_round_trip(
    open_store: Callable[..., Store],
) -> None:
    steady = FakeClock(1000.0)
    slow = RoundTrip(open_store(), steady, there=1.0, back=2.0)
    k = LeaseKeeper(slow, "A", LeaseSettings(TTL), clock=steady)
    await k.renew()
    # Sent at 1000: the database granted 10 s from its own "now" (at 1001 or later), so
    # 1010 is the latest we may assume; the 3 s round trip came off what is left.
    assert k.deadline == 1000.0 + TTL
    assert k.remaining() == pytest.approx(TTL - 3.0)
    assert k.held and k.may_call()
    steady.advance(TTL - 3.0 - MARGIN + 0.01)
    assert not k.may_call()  # MARGIN before the deadline, the gate shuts
    with pytest.raises(LeaseLost):
        k.check()


async def test_standby_takes_over_after_expiry_and_the_old_holder_stands_down(
    open_store: Callable[..., Store], db_clock: FakeClock
) -> None:
    a, steady_a = keeper(open_store(), "A")
    b, _steady_b = keeper(open_store(), "B")
    with capture_logs() as logs:
        await a.renew()
        await b.renew()
    assert a.held and a.describe() == "vendor lease held by this node (A)"
    assert not b.held and not b.may_call()
    assert b.describe() == "standby (B): vendor lease held by A"
    assert events(logs, "vendor lease acquired") == [
        {
            "event": "vendor lease acquired; this node calls the vendor",
            "component": "lease",
            "node": "A",
            "previous_holder": None,
            "lease": TTL,
            "log_level": "info",
        }
    ]

    # A freezes (or dies): it renews no more; on the database's clock its lease runs out.
    db_clock.advance(TTL - 0.5)
    await b.renew()
    assert not b.held
    db_clock.advance(0.5 + EPS)
    with capture_logs() as logs:
        await b.renew()
    assert b.held and b.changes == {"acquired": 1, "lost": 0, "released": 0, "handed_over": 0}
    (taken,) = events(logs, "vendor lease acquired")
    assert (taken["node"], taken["previous_holder"]) == ("B", "A")

    # A thaws: its own clock says the deadline passed, so it calls nothing before it has
    # asked the database, which says B holds it.
    steady_a.advance(30.0)
    assert not a.may_call()
    with capture_logs() as logs:
        await a.renew()
    assert not a.held and a.changes == {"acquired": 1, "lost": 1, "released": 0, "handed_over": 0}
    (lost,) = events(logs, "vendor lease lost")
    assert lost["log_level"] == "warning"
    assert (lost["node"], lost["previous_holder"], lost["holder"]) == ("A", "A", "B")
    assert lost["reason"] == "another node holds it"
    assert a.describe() == "standby (A): vendor lease held by B"


async def test_a_standby_loop_tries_again_and_takes_over(
    open_store: Callable[..., Store], db_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop, not single looks: a standby keeps trying (every STANDBY_EVERY; shortened
    here so the test does not wait) and takes the lease once the holder's runs out."""
    monkeypatch.setattr(lease_module, "STANDBY_EVERY", 0.02)
    a, _ = keeper(open_store(), "A")
    b, _ = keeper(open_store(), "B")
    await a.renew()
    await b.start()
    assert not b.held
    db_clock.advance(TTL + EPS)  # A is gone
    await until(lambda: b.held)
    b.close()
    await b.release()


async def test_release_on_stop_frees_it_for_another_node(
    open_store: Callable[..., Store],
) -> None:
    a, steady_a = keeper(open_store(), "A")
    b, _ = keeper(open_store(), "B")
    await a.start()
    assert a.may_call()
    a.close()
    assert not a.may_call()  # the gate shuts as the stop begins
    steady_a.advance(MARGIN)  # the stop's last calls ended long enough ago
    with capture_logs() as logs:
        await a.release()
    assert a.changes["released"] == 1
    (released,) = events(logs, "vendor lease released")
    assert (released["node"], released["free_in"]) == ("A", 0.0)
    await b.renew()
    assert b.held  # at once: no wait for A's expiry


async def test_release_right_after_the_gate_shut_holds_off_for_the_margin(
    open_store: Callable[..., Store], db_clock: FakeClock
) -> None:
    """A call sent just before the stop may still be on its way: another node's first call
    must not share its calendar second, so the lease is free MARGIN after the gate shut."""
    a, _ = keeper(open_store(), "A")
    b, _ = keeper(open_store(), "B")
    await a.start()
    await a.release()
    await b.renew()
    assert not b.held
    db_clock.advance(MARGIN + EPS)
    await b.renew()
    assert b.held


async def test_a_failed_renewal_extends_nothing_and_the_lease_lapses(
    open_store: Callable[..., Store], tmp_path: Path
) -> None:
    a, steady = keeper(open_store(busy_timeout=0.05), "A")
    await a.renew()
    deadline = a.deadline
    # Another program holds the write lock: renewals fail.
    blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    steady.advance(TTL / 3)
    with capture_logs() as logs:
        await a.renew()
        assert a.deadline == deadline and a.problem is not None
        assert a.held  # still MARGIN or more left
        steady.advance(TTL - TTL / 3 - MARGIN + 0.01)
        await a.renew()
    assert not a.held and not a.may_call()
    (warned,) = events(logs, "cannot renew the vendor lease")
    assert warned["node"] == "A" and "lock" in warned["error"]
    (lost,) = events(logs, "vendor lease lost")
    assert lost["reason"].startswith("not renewed in time (")
    assert a.describe().startswith("standby (A): cannot renew the vendor lease: ")

    blocker.execute("ROLLBACK")
    blocker.close()
    await a.renew()
    assert a.held and a.problem is None and a.changes["acquired"] == 2


async def test_a_sole_daemon_takes_its_crashed_predecessors_lease_at_once(
    open_store: Callable[..., Store],
) -> None:
    """With SQLite the instance lock proves no other daemon runs: a restart after kill -9
    must not wait out the dead process's lease (another name: hostname:pid)."""
    open_store().acquire_lease("vendor", "host:1", TTL)
    other, _ = keeper(open_store(), "host:2")
    await other.renew()
    assert not other.held  # without the lock's proof, it waits
    sole, _ = keeper(open_store(), "host:3", sole=True)
    with capture_logs() as logs:
        await sole.renew()
    assert sole.held
    (taken,) = events(logs, "vendor lease acquired")
    assert taken["previous_holder"] == "host:1"


def test_renewals_leave_the_margin_even_after_one_late_renewal(
    open_store: Callable[..., Store],
) -> None:
    """Renewed every renew_every: at the next renewal at least MARGIN + renew_every is left,
    so one renewal may fail (or come late by that much) before the gate shuts."""
    for ttl in (3.0, 4.0, 10.0, 60.0):
        k = LeaseKeeper(open_store(), "A", LeaseSettings(ttl))
        assert ttl - 2 * k.renew_every >= MARGIN
        assert k.renew_every <= ttl / 3


async def test_a_standby_learns_where_the_holders_gateway_is(
    open_store: Callable[..., Store], db_clock: FakeClock
) -> None:
    """Each look also reads the holder's advertise URL (on the keeper's thread): a standby
    knows where to forward, and learns the new holder's after a takeover."""
    a, _ = keeper(open_store(), "A")
    b, _ = keeper(open_store(), "B")
    a.advertise, b.advertise = "http://a:8080", "http://b:8080"
    await b.renew()  # nobody held it: B takes it
    await a.renew()
    assert b.held and b.holder_advertise == "http://b:8080"
    assert a.holder_advertise == "http://b:8080"

    # B moves (a reload): its next renewal publishes it, A's next look reads it.
    b.advertise = "http://b:9090"
    await b.renew()
    await a.renew()
    assert a.holder_advertise == "http://b:9090"

    # B is gone; A takes over and says where it is, and B, thawing, learns that.
    db_clock.advance(TTL + EPS)
    await a.renew()
    assert a.held and a.holder_advertise == "http://a:8080"
    await b.renew()
    assert not b.held and b.holder_advertise == "http://a:8080"

    # Released, and nobody took it since: nobody's URL.
    await a.release()
    assert a.holder_advertise is None
    c, _ = keeper(open_store(), "C")
    c.holder_advertise = "stale"
    db_clock.advance(MARGIN + EPS)
    await c.renew()
    assert c.held and c.holder_advertise is None  # C has none to give


async def test_the_standby_loop_follows_the_holders_advertise_url(
    open_store: Callable[..., Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_module, "STANDBY_EVERY", 0.02)
    a, _ = keeper(open_store(), "A")
    b, _ = keeper(open_store(), "B")
    a.advertise = "http://a:8080"
    await a.renew()
    await b.start()
    assert b.holder_advertise == "http://a:8080"
    a.advertise = "http://a:9090"
    await a.renew()
    await until(lambda: b.holder_advertise == "http://a:9090")
    await b.release()
