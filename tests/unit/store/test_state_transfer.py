"""``copy_state`` (``state migrate``): a real SQLite file into a real PostgreSQL database.
Every column of every table arrives unchanged, in one transaction that a bad row or Ctrl-C
undoes, and a target that already holds a state is never merged into."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notifier.models import WatchSpec
from notifier.store import Store, StoreError
from notifier.store.schema import named_queries
from notifier.store.transfer import NOT_COPIED, TABLES, TargetNotEmpty, copy_state
from tests.kit.schema import schema_1_file

pytestmark = pytest.mark.slow

#: Times that a decimal text or a REAL of 32 bits would not keep exactly.
TIMES = (0.1 + 0.2, 1_764_355_200.123456789, 2.0**-30, 1e300, -5e-324, 1_800_000_000.0)
#: A body is bytes: every byte value, a NUL, backslashes, a COPY delimiter, invalid UTF-8.
BODY = bytes(range(256)) + b"\\N\t\n\\\\\xff\xfe"
LABELS = '{"k": "tab\\there", "nl": "a\\nb", "q": "\\"quoted\\"", "u": "\u00fc\u4e2d", "b": "\\\\"}'


def columns(store: Store, table: str) -> list[str]:
    rows = store._execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [row[0] for row in rows]


def table_rows(store: Store, table: str, names: list[str]) -> list[tuple[Any, ...]]:
    """Every row, by the first column (and the kind: one id under two kinds is two rows),
    with bytes as bytes on both sides."""
    order = f"{names[0]}, kind" if "kind" in names and table != "events" else names[0]
    listed = ", ".join(names)
    rows = store._execute(f"SELECT {listed} FROM {table} ORDER BY {order}").fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def rich_source(path: Path) -> Store:
    """A state with a row of every table, odd values in every column that can hold one."""
    store = Store(path, clock=lambda: TIMES[1])
    store.add_watches([WatchSpec("job-a", {"k": "v"}, ("ops",)), WatchSpec("job-b")], "cli")
    # The same id under another kind is a watch of its own.
    store.add_watches([WatchSpec("job-a", kind="video")], "cli")
    store.enqueue([WatchSpec("queued-1"), WatchSpec("bad id")])
    store.take_queue(
        lambda job, _l, _e, _k, _a: "rejected for the test" if " " in job else WatchSpec(job)
    )
    store.enqueue([WatchSpec("queued-2", kind="tts")])
    store.save_token("http://vendor#app", "tok-1", TIMES[5])
    # Discovery's marks, and a removed watch it must not make again.
    store.advance_discovery(TIMES[0], TIMES[5])
    store.add_watches([WatchSpec("job-removed")], "cli")
    store.remove_watches(["job-removed"])
    store.gateway_key()
    with store.transaction():
        store._execute(
            "UPDATE watches SET labels = ?, progress = 55, create_time = 1764355200,"
            " first_running_at = ?, predicted_at = ?, poll_key = ?, last_data = ?,"
            " observed_at = ?, phase = 'running' WHERE job_id = 'job-a'",
            (LABELS, TIMES[0], TIMES[2], TIMES[3], LABELS, TIMES[0]),
        )
        store._execute(
            "INSERT INTO events (event_id, job_id, type, created_at, body, last_seen_running_at,"
            " kind) VALUES ('evt-1', 'job-a', 'lip_sync.succeeded', ?, ?, ?, 'lip_sync')",
            (TIMES[1], BODY, TIMES[4]),
        )
        # Ids with gaps, as after pruning; a claim of the daemon that stopped.
        store._execute(
            "INSERT INTO deliveries (id, event_id, endpoint, state, attempts, created_at,"
            " next_attempt_at, generation, claimed_by, claim_expires, claim_token)"
            " VALUES (40, 'evt-1', 'ops', 'pending', 2, ?, ?, 3, 'old-node', ?, 7),"
            " (90, 'evt-1', 'analytics', 'dead', 5, ?, NULL, 0, NULL, NULL, 0)",
            (TIMES[1], TIMES[0], TIMES[5], TIMES[1]),
        )
        store._execute(
            "INSERT INTO delivery_attempts (id, delivery_id, generation, started_at, duration,"
            " status, error, outcome) VALUES (12, 40, 3, ?, ?, 503, 'tab\there', 'failed'),"
            " (30, 90, 0, ?, NULL, NULL, 'timed out', 'dead')",
            (TIMES[1], TIMES[2], TIMES[0]),
        )
    return store


def test_every_column_of_every_table_is_copied_or_left_out_on_purpose(
    tmp_path: Path, pg_url: str
) -> None:
    """A migration that adds a table or a column fails here until the copy names it."""
    reads = named_queries("sqlite", "transfer.sql")
    writes = named_queries("postgres", "transfer.sql")
    with Store(tmp_path / "s.db") as sqlite_store, Store(pg_url) as pg_store:
        sqlite_tables = {
            row[0]
            for row in sqlite_store._execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        pg_tables = {
            row[0]
            for row in pg_store._execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        }
        assert sqlite_tables - set(NOT_COPIED) == set(TABLES)
        assert pg_tables - set(NOT_COPIED) == set(TABLES)
        for table in TABLES:
            read = sqlite_store._execute(reads[f"read_{table}"])
            read_names = [d[0] for d in read.description]
            in_sqlite = [r[1] for r in sqlite_store._execute(f"PRAGMA table_info({table})")]
            assert sorted(read_names) == sorted(in_sqlite), table
            assert sorted(columns(pg_store, table)) == sorted(in_sqlite), table
            statement = writes[f"copy_{table}"]
            match = re.search(rf"(?:COPY|INSERT INTO) {table} \(([^)]*)\)", statement)
            assert match is not None, table
            assert [c.strip() for c in match.group(1).split(",")] == read_names, table


def test_every_row_arrives_with_its_values_unchanged(tmp_path: Path, pg_url: str) -> None:
    source = rich_source(tmp_path / "s.db")
    seen: list[tuple[str, int]] = []
    with source, Store(pg_url) as target:
        summary = copy_state(source, target, progress=lambda t, n, _s: seen.append((t, n)))
        assert seen == [
            ("watch_queue", 2),
            ("watches", 4),
            ("events", 1),
            ("deliveries", 2),
            ("delivery_attempts", 2),
            ("discovered", 1),
            ("vendor_token", 1),
            ("state_marks", 3),
            ("gateway_keys", 1),
        ]
        assert summary.rows == dict(seen)
        assert summary.as_dict()["queue"] == {"pending": 1, "rejected": 1}
        assert summary.deliveries == {"pending": 1, "delivered": 0, "dead": 1}
        assert summary.watches["active"] == 4
        for table in TABLES:
            names = columns(target, table)
            want = table_rows(source, table, names)
            got = table_rows(target, table, names)
            if table == "deliveries":
                # The stopped daemon's claim is not carried over; the rest is.
                at = names.index("claimed_by"), names.index("claim_expires")
                assert [r[at[0]] for r in want] == ["old-node", None]
                want = [tuple(None if i in at else v for i, v in enumerate(r)) for r in want]
            assert got == want, table
        body = target._execute("SELECT body FROM events").fetchone()[0]
        assert bytes(body) == BODY
        assert target.list_watches()[0]["labels"] == source.list_watches()[0]["labels"]
        # New rows are numbered after the copied ones.
        target.enqueue([WatchSpec("queued-3")])
        target.record_operational(_event("evt-2"), ["ops"])
        target.delivery_failed(40, 500, "again", TIMES[5])
        assert target._execute("SELECT max(seq) FROM watch_queue").fetchone()[0] == 4
        assert target._execute("SELECT max(id) FROM deliveries").fetchone()[0] == 91
        assert target._execute("SELECT max(id) FROM delivery_attempts").fetchone()[0] == 31


def _event(event_id: str) -> Any:
    from notifier.models import Event

    return Event(event_id, "ops-node", "vendor.failing", TIMES[5], b"{}")


#: A new database's counts: only the mark of when it was created.
EMPTY = {**dict.fromkeys(TABLES, 0), "state_marks": 1}


def target_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


#: Rows SQLite keeps and PostgreSQL refuses: (statement, what the error names).
MISFITS = {
    # The last table: all the others were copied before it. SQLite checks no foreign key
    # unless asked to.
    "dangling attempt": (
        "INSERT INTO delivery_attempts (id, delivery_id, started_at, outcome)"
        " VALUES (77, 999, 1.0, 'failed')",
        'Key (delivery_id)=(999) is not present in table "deliveries"',
    ),
    # SQLite keeps a fraction in an INTEGER column as it is.
    "fraction in an integer column": (
        "UPDATE watches SET progress = 55.5 WHERE job_id = 'job-b'",
        'COPY watches, line 2, column progress: "55.5"',
    ),
}


@pytest.mark.parametrize("misfit", MISFITS)
def test_a_row_that_does_not_fit_leaves_the_target_as_it_was(
    tmp_path: Path, pg_url: str, misfit: str
) -> None:
    statement, named = MISFITS[misfit]
    path = tmp_path / "s.db"
    rich_source(path).close()
    with sqlite3.connect(path) as db:
        db.execute(statement)
    with Store(path) as source, Store(pg_url) as target:
        with pytest.raises(StoreError) as raised:
            copy_state(source, target)
        message = str(raised.value)
        assert "rolled back (the database is as it was)" in message
        assert named in message
        # The source is left as it was too, and usable at once.
        source.add_watches([WatchSpec("after")], "cli")
    assert target_counts(pg_url) == EMPTY


def test_ctrl_c_midway_leaves_the_target_as_it_was(tmp_path: Path, pg_url: str) -> None:
    def interrupt(table: str, _rows: int, _seconds: float) -> None:
        if table == "deliveries":
            raise KeyboardInterrupt

    with rich_source(tmp_path / "s.db") as source, Store(pg_url) as target:
        with pytest.raises(KeyboardInterrupt):
            copy_state(source, target, progress=interrupt)
        assert target_counts(pg_url) == EMPTY
        # Neither connection is left inside a transaction: a second run copies everything.
        assert copy_state(source, target).rows["deliveries"] == 2


def test_a_target_with_a_state_is_refused_and_replace_empties_it_first(
    tmp_path: Path, pg_url: str
) -> None:
    with rich_source(tmp_path / "s.db") as source, Store(pg_url) as target:
        target.add_watches([WatchSpec("already-here")], "cli")
        target.save_token("http://vendor#app", "tok-newer", TIMES[5])
        with pytest.raises(TargetNotEmpty, match=r"already holds a state \(1 watches\)"):
            copy_state(source, target)
        assert [w["job_id"] for w in target.list_watches()] == ["already-here"]

        summary = copy_state(source, target, replace=True)
        assert summary.replaced == {"watches": 1}
        assert {w["job_id"] for w in target.list_watches()} == {"job-a", "job-b", "queued-1"}
        # The token fetched last is the valid one (a new one revokes the older): kept.
        assert target.get_token("http://vendor#app") == ("tok-newer", TIMES[5])


def test_an_older_source_is_upgraded_and_copied(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "old.db"
    schema_1_file(path)
    with Store(path) as source, Store(pg_url) as target:
        summary = copy_state(source, target)
        assert summary.rows == {
            "watch_queue": 1,
            "watches": 2,
            "events": 1,
            "deliveries": 2,
            "delivery_attempts": 0,
            "discovered": 0,
            "vendor_token": 1,
            "state_marks": 1,
            "gateway_keys": 0,
        }
        assert {w["job_id"]: w["state"] for w in target.list_watches()} == {
            "old-active": "active",
            "old-done": "succeeded",
        }


def test_the_sources_gateway_key_replaces_the_targets_own(tmp_path: Path, pg_url: str) -> None:
    """Tokens the gateway signed on the SQLite state stay valid after the move; a key the
    database made on its own does not make it "hold a state"."""
    with rich_source(tmp_path / "s.db") as source, Store(pg_url) as target:
        own = target.gateway_key()
        copy_state(source, target)
        assert target.gateway_key() == source.gateway_key() != own
