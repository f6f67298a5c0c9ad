"""Reading YAML strictly (duplicate keys are errors) and expanding ``${VAR}`` references."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from notifier.config.problems import ConfigError, Loc, ProblemsError, show

# --------------------------------------------------------------------------------------------
# YAML


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    def __init__(self, key: object, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {show(key)}", mark)
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue
                if duplicate:
                    raise _DuplicateKeyError(key, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


#: ``${NAME}`` braces while YAML parses: ``tokens: [${TOKEN}]`` is a flow sequence, where
#: YAML ends a plain scalar at ``{`` and ``}``. Same length, so error columns stay right.
_OPEN, _CLOSE = "\ue000", "\ue001"
_SHIELD_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^{}\n]*)?)\}")


def _shield(text: str) -> str:
    if _OPEN in text or _CLOSE in text:
        return text  # not ours to map back: leave the file as it is
    return _SHIELD_RE.sub(lambda m: f"${_OPEN}{m.group(1)}{_CLOSE}", text)


def _restore(node: Any) -> Any:
    """The parsed document with the braces :func:`_shield` hid put back."""
    if isinstance(node, str):
        return node.replace(_OPEN, "{").replace(_CLOSE, "}") if _OPEN in node else node
    if isinstance(node, dict):
        return {_restore(k): _restore(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_restore(item) for item in node]
    return node


#: A config or watch file holds at most this many values once its aliases are expanded: a
#: 269-byte "billion laughs" (aliases of aliases) expands to 258 MB. PyYAML shares an alias's
#: object instead of copying it, so the count below is linear in the file; every later walk
#: (``${VAR}`` expansion, validation) would not be.
MAX_VALUES = 200_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values ``node`` holds with every shared part counted where it is used."""
    if isinstance(node, dict | list):
        known = memo.get(id(node))
        if known is not None:
            return known
        memo[id(node)] = MAX_VALUES + 1  # a cycle (``&a [*a]``) counts as too big
        items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1
        for item in items:
            total += _expanded_size(item, memo)
            if total > MAX_VALUES:
                break
        memo[id(node)] = total
        return total
    return 1


def read_yaml_file(
    path: str | os.PathLike[str], error: type[ProblemsError] = ConfigError
) -> object:
    """Parse the YAML file at ``path``; problems raise ``error`` with ``<path>: …`` lines."""
    source = os.fspath(path)

    def fail(problem: str) -> NoReturn:
        raise error([f"{source}: {problem}"])

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        fail("file not found")
    except IsADirectoryError:
        fail("is a directory, not a file")
    except PermissionError:
        fail("permission denied")
    except OSError as exc:
        fail(f"cannot read file: {exc.strerror or exc.__class__.__name__}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"not valid UTF-8 text (bad byte at offset {exc.start})")
    try:
        document = yaml.load(_shield(text), Loader=_StrictLoader)  # a SafeLoader subclass
        values = _expanded_size(document, {})
        if values > MAX_VALUES:
            fail(
                f"expands to over {MAX_VALUES:,} values: YAML aliases (*name) repeat large "
                "parts of it (a 'billion laughs' file?); write the values out instead"
            )
        return _restore(document)
    except _DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fail(f"YAML error{where}: {exc.problem}")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context == "while scanning an alias":  # events: [*.failed]
            problem += '; a value that starts with * must be quoted, e.g. "*.failed"'
        fail(f"YAML syntax error{where}: {problem}")
    except yaml.reader.ReaderError as exc:
        fail(
            f"YAML syntax error at character {exc.position + 1}: "
            f"character {exc.character!r} is not allowed in YAML"
        )
    except yaml.YAMLError as exc:
        fail(f"YAML syntax error: {str(exc).splitlines()[0] if str(exc) else 'invalid YAML'}")
    except RecursionError:
        fail("YAML is nested too deeply")


# --------------------------------------------------------------------------------------------
# ${VAR} expansion

_REF_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _expand_str(
    text: str, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, str]]
) -> str:
    if "${" not in text:
        return text
    missing: list[str] = []
    malformed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal malformed
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            malformed = True
            return ""
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return ""
        return value

    result = _REF_RE.sub(replace, text)
    if malformed:
        problems.append(
            (
                loc,
                "malformed ${...} reference: use ${NAME} or ${NAME:-default} "
                "(NAME: letters, digits, '_'); write $${ for a literal ${",
            )
        )
    if missing:
        names = list(dict.fromkeys(missing))
        if len(names) == 1:
            problems.append((loc, f"environment variable {names[0]} is not set"))
        else:
            problems.append((loc, f"environment variables {', '.join(names)} are not set"))
    return result


def expand(
    node: object, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, str]]
) -> object:
    """Replace ``${VAR}`` in every string value (not in keys) below ``node``."""
    if isinstance(node, str):
        return _expand_str(node, loc, environ, problems)
    if isinstance(node, dict):
        return {
            key: expand(value, (*loc, key if isinstance(key, str) else str(key)), environ, problems)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [expand(item, (*loc, i), environ, problems) for i, item in enumerate(node)]
    return node
