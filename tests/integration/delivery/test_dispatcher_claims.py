"""Two dispatchers on one SQLite file are two nodes delivering from one database: real
senders, the real receiver over loopback HTTP, claims on the database's clock.

A node "frozen" after claiming is a monotonic clock the test moves; the database's clock
moving on meanwhile is the claim's expiry moved back in the file (what an hour of waiting
would do), so nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from notifier.delivery.dispatcher import CLAIM_MARGIN
from notifier.delivery.senders import SlackSender, WebhookSender
from notifier.models import Event, WatchSpec
from notifier.store import Store
from tests.kit import OPS_SECRET, SLACK_PATH, FakeClock, ReceiverServer
from tests.kit.delivery import attempts_done, finished, make_dispatcher

SCHEDULE = [0.2, 0.4]
TIMEOUT = 3.0


class Node:
    """One daemon's delivery side: its own store connection, dispatcher and clocks."""

    def __init__(
        self, name: str, path: Path, clock: FakeClock, client: httpx.AsyncClient, url: str
    ) -> None:
        self.name = name
        self.store = Store(path, clock=clock)
        self.mono = FakeClock(1000.0)
        self.seen: list[tuple[str, str, int]] = []
        sender = WebhookSender(client, f"{url}/ops", [OPS_SECRET], TIMEOUT)
        self.dispatcher = make_dispatcher(
            self.store,
            {"ops": (sender, 4)},
            SCHEDULE,
            clock=clock,
            node=name,
            monotonic=self.mono,
            claim_observer=lambda *told: self.seen.append(told),
        )

    def told(self, what: str) -> int:
        return sum(n for _endpoint, kind, n in self.seen if kind == what)


class Cluster:
    def __init__(self, tmp_path: Path, client: httpx.AsyncClient, url: str) -> None:
        self.clock = FakeClock()
        path = tmp_path / "state.db"
        self.a = Node("node-a", path, self.clock, client, url)
        self.b = Node("node-b", path, self.clock, client, url)
        #: The operator's CLI, and the test's look into the file.
        self.cli = Store(path, clock=self.clock)

    def queue(self, job_id: str = "job-1") -> Event:
        detail, event = finished(job_id, self.clock)
        self.cli.add_watches([WatchSpec(job_id)], "queue")
        assert self.cli.record_terminal(detail, event, ["ops"])
        return event

    def rows(self) -> list[dict[str, Any]]:
        query = (
            "SELECT id, state, attempts, last_status, claimed_by, claim_token"
            " FROM deliveries ORDER BY id"
        )
        return [dict(row) for row in self.cli._db.execute(query)]

    def row(self) -> dict[str, Any]:
        (only,) = self.rows()
        return only

    def database_clock_moves_on(self, seconds: float) -> None:
        """What waiting ``seconds`` does to the claims (their expiry is on the DB clock)."""
        with self.cli.transaction():
            self.cli._db.execute(
                "UPDATE deliveries SET claim_expires = claim_expires - ?", (seconds,)
            )


@pytest.fixture
async def cluster(tmp_path: Path, receiver: ReceiverServer) -> AsyncIterator[Cluster]:
    async with httpx.AsyncClient() as client:
        c = Cluster(tmp_path, client, receiver.url)
        yield c
        for node in (c.a, c.b):
            await node.dispatcher.drain(1.0)
            node.store.close()
        c.cli.close()


async def test_a_node_stalled_after_claiming_claims_again_instead_of_sending(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    cluster.queue()
    a = cluster.a
    with capture_logs() as logs:
        await a.dispatcher.tick()
        # Frozen right after the claim: less than the attempt's timeout is left of it.
        a.mono.advance(CLAIM_MARGIN + 0.5)
        await attempts_done()
    assert rec.all() == []
    assert cluster.row() | {"id": 0} == {
        "id": 0,
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "claimed_by": None,  # given back: any node may claim it at once
        "claim_token": 1,
    }
    assert a.told("expired") == 1
    said = [e for e in logs if e["event"].startswith("claim too short")]
    assert len(said) == 1 and said[0]["log_level"] == "info", logs

    await a.dispatcher.tick()  # a fresh claim, with its full time
    await attempts_done()
    assert len(rec.all("/ops")) == 1 and rec.all("/ops")[0].accepted
    row = cluster.row()
    assert (row["state"], row["attempts"], row["claimed_by"], row["claim_token"]) == (
        "delivered",
        1,
        None,
        2,
    )
    assert a.told("claimed") == 2


async def test_a_node_woken_after_its_claim_was_taken_over_sends_nothing(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    cluster.queue()
    a, b = cluster.a, cluster.b
    await a.dispatcher.tick()
    # Node A freezes for an hour: its claim lapses and node B takes the delivery.
    a.mono.advance(3600)
    cluster.database_clock_moves_on(3600)
    await b.dispatcher.tick()
    assert b.told("claimed") == 1
    await attempts_done()  # A wakes up (its attempt task runs first), B sends
    assert len(rec.all("/ops")) == 1
    row = cluster.row()
    assert (row["state"], row["attempts"], row["claim_token"]) == ("delivered", 1, 2)
    assert a.told("expired") == 1 and a.told("claimed") == 1


async def test_an_attempt_whose_claim_was_taken_over_does_not_overwrite(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    """Node A's attempt outlives its claim (frozen mid-attempt); node B takes the delivery
    over and delivers it; A's late failure is neither written nor reported as the result."""
    rec = receiver.receiver
    rec.script("/ops", [500])  # the first POST (A's) fails, later ones succeed
    rec.set_delay("/ops", 0.5)
    cluster.queue()
    a, b = cluster.a, cluster.b
    with capture_logs() as logs:
        await a.dispatcher.tick()
        assert await rec.wait_for(lambda r: len(r.all("/ops")) == 1, timeout=10)
        rec.set_delay("/ops", 0)
        cluster.database_clock_moves_on(3600)
        await b.dispatcher.tick()
        await attempts_done()
    assert sorted(r.status_returned for r in rec.all("/ops")) == [200, 500]
    row = cluster.row()
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)
    assert row["claimed_by"] is None
    assert a.told("claim_lost") == 1 and b.told("claim_lost") == 0
    lost = [e for e in logs if "another node took the delivery over" in e["event"]]
    assert len(lost) == 1 and lost[0]["log_level"] == "info", logs
    # The attempt happened, so the history keeps it; the delivery's result is B's.
    (event,) = cluster.cli.list_events()
    history = cluster.cli.event_history(event["event_id"])
    assert history is not None
    assert sorted(a["status"] for a in history["deliveries"][0]["history"]) == [200, 500]


async def test_a_clean_stop_gives_its_claims_back(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    rec.set_delay("/ops", 2.0)
    cluster.queue()
    a, b = cluster.a, cluster.b
    await a.dispatcher.tick()
    assert await rec.wait_for(lambda r: len(r.all("/ops")) == 1, timeout=10)
    with capture_logs() as logs:
        await a.dispatcher.drain(0.05)  # SIGTERM: the attempt is cut short
    assert cluster.row()["claimed_by"] is None
    assert any(e["event"] == "delivery claims released" for e in logs), logs
    rec.set_delay("/ops", 0)
    await b.dispatcher.tick()  # at once, not when A's claim would have lapsed
    assert b.told("claimed") == 1
    await attempts_done()
    row = cluster.row()
    assert (row["state"], row["claim_token"]) == ("delivered", 2)


async def test_a_replay_during_a_claim_is_not_sent_beside_the_attempt(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    rec.set_delay("/ops", 0.5)
    event = cluster.queue()
    a, b = cluster.a, cluster.b
    await a.dispatcher.tick()
    assert await rec.wait_for(lambda r: len(r.all("/ops")) == 1, timeout=10)
    assert cluster.cli.replay([event.event_id]) == {event.event_id: 1}
    await b.dispatcher.tick()
    assert b.told("claimed") == 0  # A's attempt is in flight: no second one beside it
    rec.set_delay("/ops", 0)
    await attempts_done()
    # A's result (older generation) is not written; A lets go and sends the replay at once.
    assert a.told("reset") == 1
    assert len(rec.all("/ops")) == 2
    row = cluster.row()
    assert (row["state"], row["attempts"], row["claimed_by"]) == ("delivered", 1, None)


async def test_two_nodes_deliver_every_event_once(
    cluster: Cluster, receiver: ReceiverServer
) -> None:
    rec = receiver.receiver
    rec.set_delay("/ops", 0.02)
    for n in range(40):
        cluster.queue(f"job-{n}")
    for _ in range(20):
        await cluster.a.dispatcher.tick()
        await cluster.b.dispatcher.tick()
        await attempts_done()
        if all(r["state"] == "delivered" for r in cluster.rows()):
            break
    assert all(r["state"] == "delivered" and r["attempts"] == 1 for r in cluster.rows())
    ids = [r.webhook_id for r in rec.all("/ops")]
    assert len(ids) == len(set(ids)) == 40
    assert cluster.a.told("claimed") + cluster.b.told("claimed") == 40
    assert cluster.b.told("claimed") > 0  # B took a share while A's lanes were full


async def test_a_claim_covers_the_wait_for_a_shared_slack_url(
    tmp_path: Path, receiver: ReceiverServer
) -> None:
    """Two endpoints post to one Slack URL through one sender, one message at a time: an
    attempt may first wait for the other endpoint's, so its claim covers both."""
    clock = FakeClock()
    with Store(tmp_path / "state.db", clock=clock) as store:
        for job_id, endpoints in (("job-1", ["team", "alerts"]), ("job-2", ["ops"])):
            detail, event = finished(job_id, clock)
            store.add_watches([WatchSpec(job_id)], "queue")
            assert store.record_terminal(detail, event, endpoints)
        async with httpx.AsyncClient() as client:
            slack = SlackSender(client, f"{receiver.url}{SLACK_PATH}", TIMEOUT, min_spacing=0.1)
            webhook = WebhookSender(client, f"{receiver.url}/ops", [OPS_SECRET], TIMEOUT)
            lanes = {"team": (slack, 1), "alerts": (slack, 1), "ops": (webhook, 4)}
            dispatcher = make_dispatcher(store, lanes, SCHEDULE, clock=clock)
            await dispatcher.tick()
            left = dict(
                store._db.execute(
                    "SELECT endpoint, claim_expires - (julianday('now') - 2440587.5) * 86400.0"
                    " FROM deliveries"
                ).fetchall()
            )
            shared = 2 * (0.1 + TIMEOUT) + CLAIM_MARGIN
            assert left["team"] == pytest.approx(shared, abs=1)
            assert left["alerts"] == pytest.approx(shared, abs=1)
            assert left["ops"] == pytest.approx(TIMEOUT + CLAIM_MARGIN, abs=1)
            await attempts_done()
            assert {d["state"] for d in store.list_deliveries()} == {"delivered"}
            await dispatcher.drain(1.0)
