"""From a file to a validated :class:`Config`: read, expand, validate, and translate
pydantic's errors into ``file: key: problem`` lines."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from notifier.config.accounts import AccountConfig
from notifier.config.problems import ConfigError, KeyedProblems, Loc, dotted, kind, show
from notifier.config.reader import expand, read_yaml_file
from notifier.config.sections import ENDPOINT_TYPES, SECTIONS, Config

# --------------------------------------------------------------------------------------------
# Turning pydantic errors into lines


def _normalize_loc(loc: tuple[int | str, ...]) -> tuple[Loc, str | None]:
    """Drop the discriminator tag pydantic puts in ``endpoints[i]`` paths; return it apart."""
    out: list[str | int] = []
    tag: str | None = None
    for i, part in enumerate(loc):
        if (
            i == 2
            and loc[0] == "endpoints"
            and isinstance(loc[1], int)
            and isinstance(part, str)
            and part in ENDPOINT_TYPES
        ):
            tag = part
            continue
        out.append(part)
    return tuple(out), tag


_MISSING = object()


def _raw_at(data: object, loc: Loc) -> object:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return _MISSING
        data = data[part]  # type: ignore[index]
    return data


def _model_at(loc: Loc, tag: str | None, raw: object) -> type[BaseModel] | None:
    if not loc:
        return Config
    if len(loc) == 1 and isinstance(loc[0], str):
        return SECTIONS.get(loc[0])
    if len(loc) == 2 and loc[0] == "accounts" and isinstance(loc[1], int):
        return AccountConfig
    if len(loc) == 2 and loc[0] == "endpoints" and isinstance(loc[1], int):
        if tag is None:
            item = _raw_at(raw, loc)
            kind_ = item.get("type") if isinstance(item, dict) else None
            tag = kind_ if isinstance(kind_, str) else None
        return ENDPOINT_TYPES.get(tag) if tag else None
    return None


def _is_secret(loc: Loc, tag: str | None) -> bool:
    if loc[:2] == ("state", "url"):
        return True  # it may carry the database password
    return any(p in ("secret", "secret_key") for p in loc) or (tag == "slack" and "url" in loc)


def _translate(error: ErrorDetails, raw: object) -> list[tuple[Loc, str]]:
    loc, tag = _normalize_loc(error["loc"])
    kind_of = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind_of in ("value_error", "assertion_error"):
        exc = ctx.get("error")
        if isinstance(exc, KeyedProblems):
            return [((*loc, *sub), msg) for sub, msg in exc.items]
        msg = str(exc) if exc is not None else error["msg"]
        # A single secret string is wrapped into a list before validation: blame the key.
        secret_item = loc and isinstance(loc[-1], int) and loc[-2:-1] == ("secret",)
        if secret_item and isinstance(_raw_at(raw, loc[:-1]), str):
            loc = loc[:-1]
        return [(loc, msg)]
    if kind_of == "missing":
        return [(loc, "required key is missing")]
    if kind_of == "extra_forbidden":
        model = _model_at(loc[:-1], tag, raw)
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model else ""
        return [(loc, f"unknown key{allowed}")]
    if kind_of == "union_tag_invalid":
        item = _raw_at(raw, loc)
        given = item.get("type") if isinstance(item, dict) else None
        shown = show(given) if isinstance(given, str) else f"a {kind(given)}"
        return [
            (
                (*loc, "type"),
                f"unknown endpoint type {shown} (allowed: {', '.join(ENDPOINT_TYPES)})",
            )
        ]
    if kind_of == "union_tag_not_found":
        return [((*loc, "type"), f"required key is missing (one of: {', '.join(ENDPOINT_TYPES)})")]
    if kind_of in ("dict_type", "model_type", "model_attributes_type"):
        return [(loc, f"must be a mapping, got {kind(value)}")]
    if kind_of in ("list_type", "tuple_type"):
        return [(loc, f"must be a list, got {kind(value)}")]
    if kind_of == "string_type":
        return [(loc, f"must be a string, got {kind(value)}")]
    if kind_of == "literal_error":
        expected = str(ctx.get("expected", ""))
        got = "" if _is_secret(loc, tag) else f", got {show(value)}"
        return [(loc, f"must be one of {expected}{got}")]
    message = error["msg"]
    return [(loc, message[:1].lower() + message[1:])]


def _startswith(loc: Loc, prefix: Loc) -> bool:
    return loc[: len(prefix)] == prefix


# --------------------------------------------------------------------------------------------
# Entry points


def parse_config(
    data: object,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Validate already-parsed YAML ``data`` (expanding ``${VAR}`` from ``environ``).

    Relative ``state.path`` and ``watch.file`` are resolved against ``base_dir`` when given.
    Raises :class:`ConfigError` with every problem found, each prefixed by ``source``.
    """
    if data is None:
        raise ConfigError([f"{source}: file is empty"])
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"{source}: top level must be a mapping with keys "
                f"{', '.join(Config.model_fields)}; got {kind(data)}"
            ]
        )
    env_problems: list[tuple[Loc, str]] = []
    try:
        expanded = expand(data, (), os.environ if environ is None else environ, env_problems)
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems = list(env_problems)
        for error in exc.errors():
            for loc, msg in _translate(error, data):
                if not any(_startswith(loc, bad) for bad, _ in env_problems):
                    problems.append((loc, msg))
        raise ConfigError(_lines(source, problems, data)) from None
    except RecursionError:
        raise ConfigError([f"{source}: nested too deeply (or recursive YAML aliases)"]) from None
    if env_problems:
        raise ConfigError(_lines(source, env_problems))
    if base_dir is not None:
        config = _resolve_paths(config, Path(base_dir))
    return config


def _lines(source: str, problems: list[tuple[Loc, str]], raw: object = None) -> list[str]:
    return [
        f"{source}: {_where(loc, raw)}: {msg}" if loc else f"{source}: {msg}"
        for loc, msg in problems
    ]


def _where(loc: Loc, raw: object) -> str:
    """The dotted key; an account item is named by its name too (``accounts[1] (shop).qps``),
    as the user knows it."""
    where = dotted(loc)
    if len(loc) >= 2 and loc[0] == "accounts" and isinstance(loc[1], int):
        item = _raw_at(raw, loc[:2])
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name and len(name) <= 40 and name.isprintable():
            head = dotted(loc[:2])
            where = f"{head} ({name}){where[len(head) :]}"
    return where


def _resolve_paths(config: Config, base: Path) -> Config:
    state = config.state
    if not state.path.is_absolute():
        state = state.model_copy(update={"path": base / state.path})
    watch = config.watch
    if watch.file is not None and not watch.file.is_absolute():
        watch = watch.model_copy(update={"file": base / watch.file})
    return config.model_copy(update={"state": state, "watch": watch})


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the configuration file at ``path``.

    ``environ`` defaults to ``os.environ``. Relative paths inside the file are taken relative
    to the file's directory. Raises :class:`ConfigError`.
    """
    data = read_yaml_file(path, ConfigError)
    return parse_config(
        data, os.fspath(path), environ=environ, base_dir=Path(path).absolute().parent
    )
