"""Config problems as ``<file>: <dotted.key>: <problem>`` lines, and the small helpers that
word them (no pydantic jargon, never a secret value)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeAlias

Loc: TypeAlias = tuple[str | int, ...]

# --------------------------------------------------------------------------------------------
# Errors


class ProblemsError(Exception):
    """An error made of one or more human-readable lines (``problems``)."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(dict.fromkeys(problems)) or ["invalid"]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class ConfigError(ProblemsError):
    """The configuration cannot be used; every line is ``<file>: <dotted.key>: <problem>``."""


class KeyedProblems(ValueError):
    """A validator's complaint about keys *below* the place it validates.

    ``items`` are (relative key path, message); the loader joins them to the validator's location
    so, e.g., a model-level check can blame ``polling.min_interval`` rather than ``polling``.
    """

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" if loc else msg for loc, msg in items))


def duplicate_names(names: Iterable[str], noun: str, section: str) -> list[tuple[Loc, str]]:
    """A problem for each name already used by an earlier item of ``section`` (a list)."""
    first: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in first:
            problems.append(
                (
                    (i, "name"),
                    f"duplicate {noun} name {name!r} (already used by {section}[{first[name]}])",
                )
            )
        else:
            first[name] = i
    return problems


def dotted(loc: Iterable[object]) -> str:
    """Key path for messages: ``("endpoints", 1, "secret")`` → ``endpoints[1].secret``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = part if isinstance(part, str) else show(part)
            if not _PLAIN_KEY_RE.fullmatch(text):
                text = repr(text)  # empty, spaces, dots, control characters: quote them
            out += ("." if out else "") + text
    return out


_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def kind(value: object) -> str:
    """A YAML-ish name for the type of ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def show(value: object, limit: int = 60) -> str:
    """A short repr of a (non-secret) value for messages."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return "a very large integer"
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {kind(value)}"
