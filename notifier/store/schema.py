"""The SQL the store runs, read from ``sql/``: named queries and numbered migrations."""

from __future__ import annotations

import re
from importlib import resources

_SQL_DIR = resources.files("notifier.store") / "sql"
_MIGRATION_RE = re.compile(r"^migration_(\d{3})\.sql$")


def _load_queries() -> dict[str, str]:
    text = (_SQL_DIR / "queries.sql").read_text(encoding="utf-8")
    queries: dict[str, str] = {}
    for chunk in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = chunk.partition("\n")
        queries[name.strip()] = body.strip()
    return queries


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in _SQL_DIR.iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


Q = _load_queries()
SCHEMA_VERSION = _migrations()[-1][0]


def _split_sql(script: str) -> list[str]:
    """Statements of a migration file (no semicolons inside literals in our files)."""
    lines = [re.sub(r"--.*$", "", line) for line in script.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
