"""The SQL the store runs, read from ``sql/<dialect>/``: named queries and numbered migrations.

Both dialects answer the same query names with the same parameters (SQLite ``?``/``:name``,
psycopg ``%s``/``%(name)s``), and their migrations share numbers: a schema version means
the same tables whichever database holds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_SQL_DIR = resources.files("notifier.store") / "sql"
_MIGRATION_RE = re.compile(r"^migration_(\d{3})\.sql$")


@dataclass(frozen=True)
class Dialect:
    name: str
    queries: dict[str, str]
    migrations: list[tuple[int, str]]

    @property
    def version(self) -> int:
        return self.migrations[-1][0]


def _load_queries(name: str, file: str = "queries.sql") -> dict[str, str]:
    text = (_SQL_DIR / name / file).read_text(encoding="utf-8")
    queries: dict[str, str] = {}
    for chunk in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        query, _, body = chunk.partition("\n")
        queries[query.strip()] = body.strip()
    return queries


def _load_migrations(name: str) -> list[tuple[int, str]]:
    found = []
    for entry in (_SQL_DIR / name).iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


@cache
def dialect(name: str) -> Dialect:
    """``sqlite`` or ``postgres``, read once."""
    return Dialect(name, _load_queries(name), _load_migrations(name))


@cache
def named_queries(name: str, file: str) -> dict[str, str]:
    """The statements of another file of ``sql/<name>/``, by name (``-- name:`` as above)."""
    return _load_queries(name, file)


def _migrations() -> list[tuple[int, str]]:
    """SQLite's migrations (the tests build old state files from them)."""
    return dialect("sqlite").migrations


#: SQLite's queries by name.
Q = dialect("sqlite").queries
SCHEMA_VERSION = dialect("sqlite").version


def _split_sql(script: str) -> list[str]:
    """Statements of a migration file: split at semicolons, except inside a ``$$``-quoted
    function body (PostgreSQL's triggers); no semicolons inside literals in our files."""
    lines = [re.sub(r"--.*$", "", line) for line in script.splitlines()]
    statements: list[str] = []
    current = ""
    # Even pieces are outside a $$ body, odd ones inside it.
    for index, piece in enumerate("\n".join(lines).split("$$")):
        if index % 2:
            current += f"$${piece}$$"
            continue
        first, *rest = piece.split(";")
        current += first
        for part in rest:
            statements.append(current)
            current = part
    statements.append(current)
    return [stmt.strip() for stmt in statements if stmt.strip()]
