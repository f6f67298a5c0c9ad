"""What only the PostgreSQL backend has to get right: a server that drops the connection, a
schema from a newer version, nodes that migrate or take the queue at the same moment, a
read-only standby, another session's lock, and a password that never reaches a message."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from notifier.models import WatchSpec
from notifier.store import BUSY_CAUSE, SCHEMA_VERSION, Store, StoreError, StoreUnavailable
from notifier.store.errors import UNREACHABLE_CAUSE
from notifier.store.postgres import MIGRATION_LOCK
from notifier.store.schema import dialect
from tests.kit import FakeClock, PgServer

PASSWORD = "pw-9f2c4e1a7b3d-secret"


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Another session on the test's database: the operator, or another program."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def backend_pid(store: Store) -> int:
    return int(store._db.info.backend_pid)


def test_both_dialects_have_the_same_schema_version() -> None:
    assert dialect("postgres").version == dialect("sqlite").version == SCHEMA_VERSION
    # PostgreSQL answers every query name SQLite does, plus one-statement forms of a few
    # transactions (the store uses them when the dialect has them).
    extra = set(dialect("postgres").queries) - set(dialect("sqlite").queries)
    assert set(dialect("sqlite").queries) <= set(dialect("postgres").queries)
    assert extra == {
        "claim_and_read_deliveries",
        "delivery_succeeded_with_attempt",
        "delivery_failed_with_attempt",
    }


def test_a_dropped_connection_is_opened_again_by_the_next_call(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store = Store(pg_url, clock=FakeClock())
    store.add_watches([WatchSpec("a")], "queue")
    for attempt in (lambda: store.list_watches(), lambda: store.add_watches([], "queue")):
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(store),))
        # The call that meets the dead connection reports the outage...
        with pytest.raises(StoreUnavailable) as raised:
            attempt()
        assert raised.value.cause == UNREACHABLE_CAUSE
        assert store.write_failure is not None
        # ... and the next one works on a new connection, as the daemon's probe does.
        assert store.writable()
        assert store.write_failure is None
    store.add_watches([WatchSpec("b")], "queue")
    assert [w["job_id"] for w in store.list_watches()] == ["a", "b"]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    Store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (%s, now())",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StoreError, match="newer than this program") as raised:
        Store(pg_url)
    assert str(SCHEMA_VERSION + 1) in str(raised.value)


def test_two_stores_migrating_at_once_migrate_once(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Both nodes start on an empty database: one migrates, the other waits for it and
    finds the schema done (without the lock both would CREATE the same tables)."""
    opened: list[Store] = []
    failures: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(Store(pg_url))
        except BaseException as exc:
            failures.append(exc)

    admin.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    for _ in range(500):
        if admin.execute(waiting).fetchone() == (2,):
            break
        threading.Event().wait(0.01)
    assert admin.execute(waiting).fetchone() == (2,)  # both are at the migration's door
    admin.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    for thread in threads:
        thread.join(30)
    assert failures == [] and len(opened) == 2
    versions = admin.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    # Each migration once (not once per node).
    assert versions == [(number,) for number, _ in dialect("postgres").migrations]
    assert versions[-1] == (SCHEMA_VERSION,)
    for store in opened:
        store.close()


def test_the_queue_taken_by_two_stores_at_once_gives_each_row_to_one(pg_url: str) -> None:
    first, second = Store(pg_url), Store(pg_url, busy_timeout=0.5)
    first.enqueue([WatchSpec(f"job{i:03d}") for i in range(120)])
    seen: dict[str, list[str]] = {"first": [], "second": []}

    def parse_second(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec:
        seen["second"].append(str(job_id))
        return WatchSpec(str(job_id))

    def parse_first(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec:
        if not seen["first"]:
            # The other node takes the queue while this one holds its rows, uncommitted.
            second.take_queue(parse_second)
        seen["first"].append(str(job_id))
        return WatchSpec(str(job_id))

    taken = first.take_queue(parse_first, limit=50)
    assert taken.added == 50
    assert len(seen["second"]) == 70
    assert not set(seen["first"]) & set(seen["second"])
    assert len(first.list_watches()) == 120
    assert first._db.execute("SELECT count(*) FROM watch_queue").fetchone() == (0,)


def test_another_sessions_lock_is_busy_not_a_bug(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    store = Store(pg_url, busy_timeout=0.05)
    with admin.transaction():
        admin.execute("LOCK TABLE watches IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreUnavailable) as raised:
            store.add_watches([WatchSpec("a")], "queue")
        assert raised.value.cause == BUSY_CAUSE
        assert store.write_failure is not None and store.write_failure[1] == BUSY_CAUSE
    assert store.writable()
    store.add_watches([WatchSpec("a")], "queue")
    assert [w["job_id"] for w in store.list_watches()] == ["a"]


def test_a_read_only_database_opens_and_names_the_cause(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A standby (here: a database set read-only) still answers reads; writes pause."""
    Store(pg_url).close()
    name = pg_url.rpartition("/")[2]
    admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    store = Store(pg_url)
    assert store.list_watches() == []
    with pytest.raises(StoreUnavailable) as raised:
        store.add_watches([WatchSpec("a")], "queue")
    assert "read-only" in raised.value.cause


def test_a_bug_in_a_statement_is_not_an_outage(pg_url: str) -> None:
    store = Store(pg_url)
    with pytest.raises(psycopg.errors.UndefinedTable), store.transaction():
        store._db.execute("UPDATE no_such_table SET x = 1")
    assert store.write_failure is None
    store.add_watches([WatchSpec("a")], "queue")


def test_the_password_is_never_in_a_message(pg_server: PgServer, pg_url: str) -> None:
    user_at = pg_url.replace("postgresql://postgres@", "")
    with_password = f"postgresql://postgres:{PASSWORD}@{user_at}"
    store = Store(with_password)
    assert PASSWORD not in store.where
    assert store.where == pg_url
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(store),))
    with pytest.raises(StoreUnavailable) as lost:
        store.add_watches([WatchSpec("a")], "queue")
    assert PASSWORD not in str(lost.value) and store.where in str(lost.value)

    # Nobody listens on port 1: the open fails, naming the database but not the password.
    with pytest.raises(StoreError) as refused:
        Store(f"postgresql://someone:{PASSWORD}@127.0.0.1:1/state")
    message = str(refused.value)
    assert PASSWORD not in message
    assert message.startswith("postgresql://someone@127.0.0.1:1/state: cannot open")


def test_a_failed_commit_leaves_no_transaction_open(
    pg_url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A constraint checked at COMMIT (deferred) fails the COMMIT itself: the store must
    be out of the transaction afterwards, and the next write must work."""
    store = Store(pg_url)
    admin.execute(
        "CREATE TABLE tagged (job_id TEXT REFERENCES events (event_id) "
        "DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(psycopg.errors.ForeignKeyViolation), store.transaction():
        store._db.execute("INSERT INTO tagged VALUES ('missing')")
    assert not store._in_transaction() and store.write_failure is None
    store.add_watches([WatchSpec("a")], "queue")
    assert [w["job_id"] for w in store.list_watches()] == ["a"]
