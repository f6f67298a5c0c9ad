"""The SQL the store runs, read from ``sql/``: named queries and numbered migrations.

A statement both dialects run as it is is written once, in ``sql/common/queries.sql``, in
SQLite's placeholders (``?``, ``:name``); :func:`to_psycopg` gives PostgreSQL its form
(``%s``, ``%(name)s``). ``sql/<dialect>/queries.sql`` holds only what really differs, in
the dialect's own placeholders; a name defined in both is refused when loading. Both
dialects answer the same names with the same parameters, and their migrations share
numbers: a schema version means the same tables whichever database holds them.

``{name}`` in a statement stands for the ``-- fragment: name`` of that name: the watch
column list once for every query that reads a :class:`~notifier.store.rows.WatchRow`; the
database's clock, per dialect; parts two PostgreSQL statements share. A fragment of
``sql/common/`` holds no placeholder (it is expanded after translation).

``sql/<dialect>/schema.sql`` is the schema the migrations make, to read (a test keeps it
true); the migrations stay what makes and upgrades a state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_SQL_DIR = resources.files("notifier.store") / "sql"
_MIGRATION_RE = re.compile(r"^migration_(\d{3})\.sql$")
_CHUNK_RE = re.compile(r"^-- (name|fragment): ", flags=re.MULTILINE)
_FRAGMENT_RE = re.compile(r"\{([a-z_]+)\}")
#: What SQLite-style SQL holds that matters to translation: literals, quoted names and
#: comments (copied as they are), ``::`` casts, ``?`` and ``:name``.
_TOKEN_RE = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|::|\?|:([A-Za-z_]\w*)")


class SqlError(ValueError):
    """A file of ``sql/`` that the loader refuses (a bug of this program, found at import)."""


@dataclass(frozen=True)
class Dialect:
    name: str
    queries: dict[str, str]
    migrations: list[tuple[int, str]]

    @property
    def version(self) -> int:
        return self.migrations[-1][0]


def to_psycopg(sql: str) -> str:
    """SQLite's placeholders as psycopg's: ``?`` → ``%s``, ``:name`` → ``%(name)s``; what is
    inside literals, quoted names and comments, and ``::`` casts, are left as they are. A
    ``%`` (psycopg would read it as a placeholder, even in a literal) and a mix of both
    styles (psycopg takes one or the other) are refused."""
    if "%" in sql:
        raise SqlError(f"a % in common SQL: {sql[:60]!r}")
    styles: set[str] = set()

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            styles.add("positional")
            return "%s"
        if match.group(1):
            styles.add("named")
            return f"%({match.group(1)})s"
        return token

    translated = _TOKEN_RE.sub(swap, sql)
    if len(styles) > 1:
        raise SqlError(f"both ? and :name in one statement: {sql[:60]!r}")
    return translated


def _chunks(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """({query name: body}, {fragment name: body}) of one file. A body ends at its last
    statement line: comments after it (a section's heading) belong to what follows."""
    found: dict[str, dict[str, str]] = {"name": {}, "fragment": {}}
    pieces = _CHUNK_RE.split(text)
    for kind, chunk in zip(pieces[1::2], pieces[2::2], strict=True):
        name, _, body = chunk.partition("\n")
        lines = body.rstrip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()
        if name.strip() in found[kind]:
            raise SqlError(f"{kind} {name.strip()!r} defined twice")
        found[kind][name.strip()] = "\n".join(lines).strip()
    return found["name"], found["fragment"]


def _fragments_expanded(sql: str, fragments: dict[str, str]) -> str:
    def expand(match: re.Match[str]) -> str:
        try:
            return fragments[match.group(1)]
        except KeyError:
            raise SqlError(f"no fragment {match.group(1)!r}") from None

    return _FRAGMENT_RE.sub(expand, sql)


def _fragment_text(fragment: str) -> str:
    """A fragment without its comment lines (they say what it is for, not what it is)."""
    lines = [line for line in fragment.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def _read(path: str) -> str:
    entry = _SQL_DIR.joinpath(*path.split("/"))
    return entry.read_text(encoding="utf-8") if entry.is_file() else ""


def _load_queries(name: str, file: str = "queries.sql") -> dict[str, str]:
    """The statements of ``sql/common/<file>`` and ``sql/<name>/<file>``, by name."""
    common, common_fragments = _chunks(_read(f"common/{file}"))
    own, own_fragments = _chunks(_read(f"{name}/{file}"))
    twice = (common.keys() & own.keys()) | (common_fragments.keys() & own_fragments.keys())
    if twice:
        raise SqlError(f"sql/{name}/{file}: defined in sql/common/{file} too: {sorted(twice)}")
    placeholders = [key for key, text in common_fragments.items() if to_psycopg(text) != text]
    if placeholders:
        # Expanded after translation: a placeholder in one would reach psycopg as SQLite's.
        raise SqlError(f"sql/common/{file}: placeholders in fragments {placeholders}")
    fragments = {
        key: _fragment_text(text) for key, text in (common_fragments | own_fragments).items()
    }
    if name == "postgres":
        common = {key: to_psycopg(sql) for key, sql in common.items()}
    return {key: _fragments_expanded(sql, fragments) for key, sql in (common | own).items()}


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
