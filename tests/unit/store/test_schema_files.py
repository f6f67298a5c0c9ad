"""``sql/<dialect>/schema.sql`` is the schema the migrations make: applied to an empty
database, each yields exactly the catalog that all the migrations yield (tables, columns,
types, defaults, constraints, indexes, triggers, functions), so the file a newcomer reads
is the schema a state has."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from notifier.store import SCHEMA_VERSION, Store
from notifier.store.schema import _split_sql

_SQL = resources.files("notifier.store") / "sql"


def _schema_file(dialect: str) -> str:
    text = (_SQL / dialect / "schema.sql").read_text(encoding="utf-8")
    assert f"-- schema_version: {SCHEMA_VERSION}\n" in text, "schema.sql names another version"
    return text


def _squeezed(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql).strip()


def _sqlite_catalog(db: sqlite3.Connection) -> dict[str, Any]:
    """What SQLite knows of each table and index, read through its pragmas (column order,
    types, NOT NULL, defaults, keys, uniqueness, partial indexes' conditions)."""
    catalog: dict[str, Any] = {}
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
    for kind, name, table, sql in rows.fetchall():
        entry: dict[str, Any] = {"kind": kind, "table": table}
        if kind == "table":
            entry["columns"] = db.execute(f"PRAGMA table_xinfo({name})").fetchall()
            entry["foreign keys"] = db.execute(f"PRAGMA foreign_key_list({name})").fetchall()
            indexes = db.execute(f"PRAGMA index_list({name})").fetchall()
            entry["indexes"] = sorted(index[1:] for index in indexes)  # not their seq
            entry["checks"] = re.findall(r"CHECK \((.*?)\)", _squeezed(sql) or "")
            entry["autoincrement"] = "AUTOINCREMENT" in (sql or "").upper()
        elif kind == "index":
            entry["columns"] = db.execute(f"PRAGMA index_xinfo({name})").fetchall()
            entry["sql"] = _squeezed(sql)
        else:
            entry["sql"] = _squeezed(sql)
        catalog[name] = entry
    return catalog


def test_sqlite_schema_file_is_what_the_migrations_make(tmp_path: Path) -> None:
    Store(tmp_path / "migrated.db").close()
    migrated, written = (sqlite3.connect(tmp_path / name) for name in ("migrated.db", "w.db"))
    try:
        written.executescript(_schema_file("sqlite"))
        assert _sqlite_catalog(written) == _sqlite_catalog(migrated)
    finally:
        migrated.close()
        written.close()


_PG_CATALOG = {
    "columns": """
        SELECT table_name, ordinal_position, column_name, data_type, is_nullable,
               column_default, is_identity, identity_generation
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "sequences": """
        SELECT sequence_name, data_type FROM information_schema.sequences
        WHERE sequence_schema = 'public' ORDER BY 1""",
}


def _pg_catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {part: conn.execute(sql).fetchall() for part, sql in _PG_CATALOG.items()}


def test_postgres_schema_file_is_what_the_migrations_make(pg_url: str) -> None:
    Store(pg_url).close()
    migrated = _pg_catalog(pg_url)
    assert migrated["triggers"] and migrated["functions"]  # the catalog reads them
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        assert _pg_catalog(pg_url)["columns"] == []
        for statement in _split_sql(_schema_file("postgres")):
            conn.execute(statement)
    assert _pg_catalog(pg_url) == migrated
