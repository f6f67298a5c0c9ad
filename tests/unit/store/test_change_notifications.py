"""Which writes to a PostgreSQL state notify the daemons (schema 11's triggers), read through
the store's own listener (``ChangeFeed``) on a real server.

Silence is shown without waiting for a timeout: after a write that must not notify, the test
sends a marker notification itself, and the next one to arrive must be that marker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from notifier.models import Event, JobDetail, WatchSpec
from notifier.store import Store
from notifier.store.postgres_listen import CHANNEL, Change, ChangeFeed
from notifier.store.schema import _split_sql
from tests.kit import FakeClock

MARKER = "marker"


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with Store(pg_url, clock=FakeClock(1_800_000_000.0)) as opened:
        yield opened


class Listener:
    def __init__(self, changes: AsyncIterator[Change], url: str) -> None:
        self.changes = changes
        self.url = url

    async def next(self) -> Change:
        return await asyncio.wait_for(anext(self.changes), 10)

    async def after(self, write: Callable[[], object]) -> list[str]:
        """The kinds ``write`` (on another connection) notified, up to the marker."""
        write()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, MARKER))
        kinds = []
        while (change := await self.next()).kind != MARKER:
            kinds.append(change.kind)
        return kinds


@pytest.fixture
async def listener(store: Store, pg_url: str) -> AsyncIterator[Listener]:
    feed = store.change_feed()
    assert isinstance(feed, ChangeFeed)
    async with feed.listen() as changes:
        yield Listener(changes, pg_url)


def finish(store: Store, job_id: str, endpoints: list[str]) -> Event:
    detail = JobDetail(job_id, 20, 100, "ok", "", "", 0, 1_700_000_000)
    event = Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", 1.0, b"{}")
    assert store.record_terminal(detail, event, endpoints)
    return event


async def test_inserts_into_the_queue_and_new_watches_notify(
    store: Store, listener: Listener, pg_url: str
) -> None:
    def plain_insert() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("INSERT INTO watch_queue (job_id) VALUES ('q1'), ('q2')")

    # One statement of two rows: one notification (statement-level, folded at COMMIT).
    assert await listener.after(plain_insert) == ["queue"]
    assert await listener.after(lambda: store.add_watches([WatchSpec("w1")], "cli")) == ["watch"]
    # The same watch again changes nothing; labels on a known one are no new watch.
    assert await listener.after(lambda: store.add_watches([WatchSpec("w1")], "cli")) == []
    relabel = [WatchSpec("w1", {"team": "a"})]
    assert await listener.after(lambda: store.add_watches(relabel, "cli")) == []


async def test_a_reopened_watch_notifies_and_a_poll_result_does_not(
    store: Store, listener: Listener
) -> None:
    store.add_watches([WatchSpec("w1")], "cli")
    await listener.after(lambda: None)  # past the add's notification
    unknown = Event("evt_w1", "w1", "lip_sync.rejected", 1.0, b"{}")
    assert await listener.after(lambda: store.reject_watch("w1", "unknown id", unknown, [])) == []
    assert await listener.after(lambda: store.reopen_watch("w1")) == ["watch"]


async def test_deliveries_notify_when_queued_or_replayed_not_while_attempted(
    store: Store, listener: Listener
) -> None:
    store.add_watches([WatchSpec("j1")], "cli")
    await listener.after(lambda: None)
    # An event with two deliveries: one notification for both.
    assert await listener.after(lambda: finish(store, "j1", ["ops", "analytics"])) == ["delivery"]

    claimed: list[int] = []

    def attempt() -> None:
        due = store.claim_due_deliveries("ops", "node-a", store.now(), 5, 30.0)
        assert len(due) == 1
        claimed.append(due[0].id)
        store.delivery_succeeded(due[0].id, 200, generation=due[0].generation, claim=due[0].claim)

    # Claims and results are the daemons' own business: no wake-up for them.
    assert await listener.after(attempt) == []
    assert await listener.after(lambda: store.replay(["evt_j1"])) == ["delivery"]
    assert await listener.after(lambda: store.replay(["evt_j1"], endpoint="ops")) == ["delivery"]


async def test_the_listener_names_the_session_that_wrote(store: Store, listener: Listener) -> None:
    """A daemon tells its own writes (it woke itself already) from other sessions'."""
    store.enqueue([WatchSpec("mine")])
    change = await listener.next()
    assert (change.kind, change.pid) == ("queue", store.session_id())


def test_migration_scripts_keep_function_bodies_whole() -> None:
    script = (
        "CREATE TABLE a (x int); -- a comment;\n"
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    PERFORM 1;\n    RETURN NULL;\nEND\n$$;\n"
        "CREATE TRIGGER t AFTER INSERT ON a EXECUTE FUNCTION f('q');\n"
    )
    assert _split_sql(script) == [
        "CREATE TABLE a (x int)",
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    PERFORM 1;\n    RETURN NULL;\nEND\n$$",
        "CREATE TRIGGER t AFTER INSERT ON a EXECUTE FUNCTION f('q')",
    ]


def test_sqlite_has_no_change_feed(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as sqlite:
        assert sqlite.change_feed() is None and sqlite.session_id() is None
