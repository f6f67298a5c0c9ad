"""Delivery claims: two `Store` objects on one database (a SQLite file or a PostgreSQL
database) are two nodes delivering from it. A due delivery goes to one of them; a lapsed
claim goes to the other; the loser's late result does not overwrite; releases; replays during
a claim.

A claim granted for ``ttl=0`` lapses at once on the database's clock: that is how these tests
let a claim expire without waiting for it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import DueDelivery, Store
from notifier.store.schema import Q
from tests.kit import FakeClock, StoreFactory

LONG = 60.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def nodes(make_store: StoreFactory, clock: FakeClock) -> tuple[Store, Store]:
    """Two nodes on either backend."""
    return make_store(clock=clock), make_store(clock=clock)


@pytest.fixture
def sqlite_nodes(tmp_path: Path, clock: FakeClock) -> tuple[Store, Store]:
    """Two nodes on one SQLite file, for what only SQLite shows (query plans, its lock)."""
    a = Store(tmp_path / "state.db", clock=clock)
    b = Store(tmp_path / "state.db", clock=clock)
    return a, b


def finish(store: Store, job_id: str, endpoints: list[str]) -> Event:
    detail = JobDetail(job_id, 20, 100, "ok", "", "", 0, 1_700_000_000)
    event = Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", 1.0, b"{}")
    store.add_watches([WatchSpec(job_id)], "queue")
    assert store.record_terminal(detail, event, endpoints)
    return event


def claims(store: Store) -> list[tuple[str | None, int]]:
    rows = store._db.execute("SELECT claimed_by, claim_token FROM deliveries ORDER BY id")
    return [(row[0], row[1]) for row in rows]


def taken_over(nodes: tuple[Store, Store], clock: FakeClock) -> tuple[DueDelivery, DueDelivery]:
    """One delivery claimed by node A, whose claim lapses at once, then by node B: (A's, B's)."""
    a, b = nodes
    finish(a, "j1", ["ops"])
    (lapsed,) = a.claim_due_deliveries("ops", "node-a", clock.now, 10, 0.0)
    (taken,) = b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG)
    return lapsed, taken


def test_a_due_delivery_goes_to_one_node(nodes: tuple[Store, Store], clock: FakeClock) -> None:
    a, b = nodes
    event = finish(a, "j1", ["ops"])
    (due,) = a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG)
    assert due.event.event_id == event.event_id and due.claim == 1
    assert due.claim_left == pytest.approx(LONG, abs=1.0)
    assert b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG) == []
    # Nor does node A get it twice (its attempt in flight is excluded, its claim is live).
    assert a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG) == []
    assert claims(a) == [("node-a", 1)]
    # Not due yet, or another endpoint's: nobody claims it.
    assert a.claim_due_deliveries("team", "node-a", clock.now, 10, LONG) == []


def test_not_yet_due_is_not_claimed(nodes: tuple[Store, Store], clock: FakeClock) -> None:
    a, _b = nodes
    finish(a, "j1", ["ops"])
    assert a.claim_due_deliveries("ops", "node-a", clock.now - 1, 10, LONG) == []
    assert claims(a) == [(None, 0)]


def test_an_expired_claim_goes_to_the_other_node(
    nodes: tuple[Store, Store], clock: FakeClock
) -> None:
    a, _b = nodes
    lapsed, taken = taken_over(nodes, clock)
    assert taken.id == lapsed.id and taken.claim == 2
    assert claims(a) == [("node-b", 2)]
    # A live claim is not taken back.
    assert a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG) == []


def test_the_losers_late_result_does_not_overwrite(
    nodes: tuple[Store, Store], clock: FakeClock
) -> None:
    a, b = nodes
    lost, won = taken_over(nodes, clock)
    assert b.delivery_succeeded(won.id, 200, generation=won.generation, claim=won.claim)
    # Node A's attempt ends later, failed: the delivered row stays delivered.
    later = clock.now + 5
    assert not a.delivery_failed(
        lost.id, 500, "HTTP 500", later, generation=lost.generation, claim=lost.claim
    )
    assert not a.delivery_succeeded(lost.id, 204, generation=lost.generation, claim=lost.claim)
    (row,) = a.list_deliveries()
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)
    # Its claim is not A's to release either.
    assert a.release_claims([(lost.id, lost.claim or 0)]) == 0


def test_the_loser_writing_first_is_refused_too(
    nodes: tuple[Store, Store], clock: FakeClock
) -> None:
    """Order does not matter: only the attempt holding the claim writes."""
    a, b = nodes
    lost, won = taken_over(nodes, clock)
    assert not a.delivery_succeeded(lost.id, 200, generation=lost.generation, claim=lost.claim)
    assert b.delivery_failed(
        won.id, 503, "HTTP 503", clock.now + 1, generation=won.generation, claim=won.claim
    )
    (row,) = a.list_deliveries()
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 503")


def test_a_written_result_releases_the_claim(nodes: tuple[Store, Store], clock: FakeClock) -> None:
    """A failure to retry later is claimable by any node once due, not after the claim."""
    a, b = nodes
    finish(a, "j1", ["ops"])
    (due,) = a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG)
    assert a.delivery_failed(
        due.id, 500, "HTTP 500", clock.now + 1, generation=due.generation, claim=due.claim
    )
    assert claims(a) == [(None, 1)]
    clock.advance(2)
    (again,) = b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG)
    assert (again.attempts, again.claim) == (1, 2)


def test_released_claims_are_taken_at_once(nodes: tuple[Store, Store], clock: FakeClock) -> None:
    """A clean stop gives its claims back, and only those."""
    a, b = nodes
    for job in ("j1", "j2", "j3"):
        finish(a, job, ["ops"])
    held = a.claim_due_deliveries("ops", "node-a", clock.now, 2, LONG)
    assert len(held) == 2
    (other,) = b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG)
    assert a.release_claims([(d.id, d.claim or 0) for d in held]) == 2
    taken = b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG, exclude={other.id})
    assert sorted(d.id for d in taken) == sorted(d.id for d in held)
    assert claims(a) == [("node-b", 2), ("node-b", 2), ("node-b", 1)]


def test_a_replay_during_a_claim_waits_for_the_attempt(
    nodes: tuple[Store, Store], clock: FakeClock, make_store: StoreFactory
) -> None:
    """`deliveries replay` while node A's attempt is in flight: node B does not start a
    second attempt beside it; A's result is not written over the replay, A lets go of the
    claim, and the replayed delivery goes out afresh."""
    a, b = nodes
    event = finish(a, "j1", ["ops"])
    (due,) = a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG)
    cli = make_store(clock=clock)
    assert cli.replay([event.event_id]) == {event.event_id: 1}
    assert b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG) == []
    assert not a.delivery_succeeded(due.id, 200, generation=due.generation, claim=due.claim)
    assert a.release_claims([(due.id, due.claim or 0)]) == 1
    (fresh,) = b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG)
    assert fresh.generation == (due.generation or 0) + 1
    assert b.delivery_succeeded(fresh.id, 200, generation=fresh.generation, claim=fresh.claim)
    (row,) = a.list_deliveries()
    assert (row["state"], row["attempts"]) == ("delivered", 1)


def test_two_nodes_claiming_at_once_never_share_a_row(
    state_location: str, clock: FakeClock
) -> None:
    """Two threads, each with its own connection, claim small batches until nothing is left:
    every delivery is claimed exactly once."""
    with Store(state_location, clock=clock) as setup:
        for n in range(300):
            finish(setup, f"j{n}", ["ops"])
    got: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def node(name: str) -> None:
        with Store(state_location, clock=clock) as store:
            start.wait()
            while batch := store.claim_due_deliveries("ops", name, clock.now, 7, LONG):
                got[name].extend(d.id for d in batch)

    threads = [threading.Thread(target=node, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    everything = got["a"] + got["b"]
    assert len(everything) == len(set(everything)) == 300


def test_the_claim_selection_reads_the_due_index(sqlite_nodes: tuple[Store, Store]) -> None:
    a, _b = sqlite_nodes
    args = {"endpoint": "ops", "node": "n", "now": 0, "limit": 1, "ttl": 1, "exclude": "[]"}
    for name in ("any_claimable", "claim_due_deliveries"):
        plan = a._db.execute("EXPLAIN QUERY PLAN " + Q[name], args).fetchall()
        assert "deliveries_due" in " ".join(row[3] for row in plan), (name, plan)


def test_a_fill_with_nothing_to_claim_takes_no_write_lock(
    sqlite_nodes: tuple[Store, Store], clock: FakeClock
) -> None:
    """Another writer holds the lock (a CLI command, another node): a node with nothing due
    is not held up by it, nor made to report the state unwritable."""
    a, b = sqlite_nodes
    finish(a, "j1", ["ops"])
    (mine,) = a.claim_due_deliveries("ops", "node-a", clock.now, 10, LONG)
    b._db.execute("PRAGMA busy_timeout = 0")
    with a.transaction():  # node A is writing meanwhile
        assert b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG) == []
        assert b.claim_due_deliveries("ops", "node-b", clock.now, 10, LONG, {mine.id}) == []
    assert b.write_failure is None


def test_list_json_names_the_node_only_while_its_claim_is_live(
    nodes: tuple[Store, Store], clock: FakeClock
) -> None:
    a, b = nodes
    finish(a, "j1", ["ops"])
    clock.advance(1)
    finish(a, "j2", ["ops"])
    a.claim_due_deliveries("ops", "node-a", clock.now, 1, LONG)
    b.claim_due_deliveries("ops", "node-b", clock.now, 1, 0.0)
    listed = {row["event_id"]: row["claimed_by"] for row in a.list_filtered("deliveries")}
    assert listed == {"evt_j1": "node-a", "evt_j2": None}
