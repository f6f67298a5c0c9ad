"""The SQL loader: common statements written once and translated for psycopg, fragments, and
the files it refuses (a name in both common and a dialect file, an unknown fragment)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from notifier.store import schema
from notifier.store.rows import WatchRow
from notifier.store.schema import SqlError, dialect, to_psycopg


def test_placeholders_become_psycopgs() -> None:
    assert to_psycopg("SELECT 1 FROM t WHERE a = ? AND b = ?") == (
        "SELECT 1 FROM t WHERE a = %s AND b = %s"
    )
    assert to_psycopg("UPDATE t SET a = :now WHERE id = :id AND b = :now") == (
        "UPDATE t SET a = %(now)s WHERE id = %(id)s AND b = %(now)s"
    )


def test_casts_literals_names_and_comments_are_left_alone() -> None:
    sql = (
        "-- :not_a_param? nor this\n"
        "SELECT '?', 'it''s :x', \"odd:name?\", :id::bigint, x::text FROM t WHERE a = :a"
    )
    assert to_psycopg(sql) == (
        "-- :not_a_param? nor this\n"
        "SELECT '?', 'it''s :x', \"odd:name?\", %(id)s::bigint, x::text FROM t WHERE a = %(a)s"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 WHERE a LIKE 'x%'",  # psycopg reads a % even inside a literal
        "SELECT 5 % 2",
        "SELECT 1 WHERE a = ? AND b = :b",  # psycopg takes one style or the other
    ],
)
def test_what_psycopg_would_misread_is_refused(sql: str) -> None:
    with pytest.raises(SqlError):
        to_psycopg(sql)


def _sql_dir(tmp_path: Path, common: str, sqlite: str) -> Path:
    for name, text in (("common", common), ("sqlite", sqlite), ("postgres", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "queries.sql").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_name_in_common_and_a_dialect_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "_SQL_DIR", _sql_dir(tmp_path, "-- name: a\nSELECT 1;\n", ""))
    assert schema._load_queries("sqlite") == {"a": "SELECT 1;"}
    (tmp_path / "sqlite" / "queries.sql").write_text("-- name: a\nSELECT 2;\n")
    with pytest.raises(SqlError, match="'a'"):
        schema._load_queries("sqlite")


def test_fragments_expand_and_an_unknown_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = "-- fragment: cols\n-- what it is for\na, b\n\n-- name: q\nSELECT {cols} FROM t;\n"
    own = "-- fragment: clock\nnow()\n\n-- name: r\nSELECT {clock};\n-- a heading for the next\n"
    monkeypatch.setattr(schema, "_SQL_DIR", _sql_dir(tmp_path, common, own))
    assert schema._load_queries("sqlite") == {"q": "SELECT a, b FROM t;", "r": "SELECT now();"}
    (tmp_path / "sqlite" / "queries.sql").write_text("-- name: r\nSELECT {nowhere};\n")
    with pytest.raises(SqlError, match="nowhere"):
        schema._load_queries("sqlite")
    (tmp_path / "common" / "queries.sql").write_text("-- fragment: f\na = :a\n")
    with pytest.raises(SqlError, match="placeholders in fragments"):
        schema._load_queries("postgres")


def test_common_statements_reach_postgres_translated() -> None:
    sqlite, postgres = dialect("sqlite").queries, dialect("postgres").queries
    assert (
        sqlite["delete_watch"]
        == "DELETE FROM watches WHERE account = ? AND kind = ? AND job_id = ?;"
    )
    assert (
        postgres["delete_watch"]
        == "DELETE FROM watches WHERE account = %s AND kind = %s AND job_id = %s;"
    )
    assert "%(now)s" in postgres["reopen_watch"] and ":now" in sqlite["reopen_watch"]
    assert not any("{" in sql for sql in (*sqlite.values(), *postgres.values()))


def test_every_watch_query_reads_the_columns_of_a_watch_row(tmp_path: Path) -> None:
    """The column list is written once (a fragment): what every query that hands out a
    WatchRow selects is what WatchRow holds."""
    wanted = [f.name for f in dataclasses.fields(WatchRow)]
    queries = dialect("sqlite").queries
    with sqlite3.connect(tmp_path / "s.db") as db:
        for _number, script in schema._migrations():
            db.executescript(script)
        for name in ("due_watches", "early_watches", "active_watches_among", "get_watch"):
            args: tuple[object, ...] = (
                ("default", "lip_sync", "[]")
                if name == "active_watches_among"
                else ("default", 0, 0)
            )
            if name == "get_watch":
                args = ("default", "lip_sync", "x")
            cursor = db.execute(queries[name], args[: queries[name].count("?")])
            assert [column[0] for column in cursor.description] == wanted, name
        args_ = {"account": "default", "cutoff": 0, "give_up_after": 0}
        cursor = db.execute(queries["expirable_watches"], args_)
        assert [column[0] for column in cursor.description] == wanted
