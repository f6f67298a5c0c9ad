"""What every command shares: loading the config, opening the state, printing tables."""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from notifier.config import Config, ConfigError, parse_config, parse_duration, read_yaml_file
from notifier.service.state_settings import state_settings
from notifier.store import (
    Store,
    StoreError,
    StoreMissing,
    default_state_path,
    prepare_state_dir,
)
from notifier.store import open_store as open_state
from notifier.watchspec import kind_check

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
CONFIG_ENV = "CHANJING_NOTIFIER_CONFIG"
#: Tables print this many rows unless --limit says otherwise (JSON prints all).
DEFAULT_TABLE_LIMIT = 100


class UsageError(Exception):
    """Bad usage or bad config: exit 2 with this message."""


# -- config -----------------------------------------------------------------------------------

#: Stand-ins for secrets a command does not use; never sent anywhere.
_PLACEHOLDER_WHSEC = "whsec_" + base64.b64encode(bytes(32)).decode()
_PLACEHOLDER_URL = "https://unset.invalid/"
_PLACEHOLDER_TEXT = "unset"
_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _unset(value: object, environ: Mapping[str, str]) -> bool:
    """A string naming a ``${VAR}`` (without a default) that the environment lacks."""
    return isinstance(value, str) and any(m not in environ for m in _REF.findall(value))


def _without_secrets(data: object, environ: Mapping[str, str]) -> object:
    """``data`` with unset ``${VAR}`` credentials replaced: commands that only read or queue
    into the state need neither the vendor credentials nor the endpoints' secrets."""
    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    vendor = data.get("chanjing")
    if isinstance(vendor, dict):
        for key in ("app_id", "secret_key"):
            if _unset(vendor.get(key), environ):
                vendor[key] = _PLACEHOLDER_TEXT
    endpoints = data.get("endpoints")
    for endpoint in endpoints if isinstance(endpoints, list) else []:
        if not isinstance(endpoint, dict):
            continue
        if _unset(endpoint.get("url"), environ):
            endpoint["url"] = _PLACEHOLDER_URL
        secret = endpoint.get("secret")
        if _unset(secret, environ):
            endpoint["secret"] = _PLACEHOLDER_WHSEC
        elif isinstance(secret, list):
            endpoint["secret"] = [_PLACEHOLDER_WHSEC if _unset(s, environ) else s for s in secret]
    return data


def config_path(args: argparse.Namespace) -> str:
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    if not path:
        raise UsageError(f"no config file: pass -c/--config PATH or set {CONFIG_ENV}")
    return str(path)


def load(args: argparse.Namespace, *, secrets: bool = True) -> tuple[Config, str]:
    """The config; ``secrets=False`` lets unset credential variables pass (see above)."""
    path = config_path(args)
    try:
        data = read_yaml_file(path, ConfigError)
        if not secrets:
            data = _without_secrets(data, os.environ)
        return parse_config(data, path, base_dir=Path(path).absolute().parent), path
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def open_store(config: Config) -> Store:
    """The existing state; read-only commands never create one (a mistyped path would
    otherwise leave an empty state behind and show nothing without a word)."""
    state = state_settings(config)
    if not state.shared:
        path = state.path
        parent = path.absolute().parent
        if not parent.is_dir() and parent != default_state_path().parent:
            raise StoreError(
                f"{path}: directory {parent} does not exist or is not a directory "
                "(state.path mistyped?)"
            )
    try:
        return open_state(state, create=False)
    except StoreMissing as exc:
        raise NoState(str(exc)) from None


def open_writable(config: Config) -> Store:
    """The state for a command that writes, created if need be (only the default
    directory of a state file is created)."""
    state = state_settings(config)
    if not state.shared:
        prepare_state_dir(state.path)
    return open_state(state)


class NoState(Exception):
    """The state does not exist yet (no file, or no tables in the database): nothing to show."""


# -- time -------------------------------------------------------------------------------------


def show_time(value: float | None) -> str:
    """UTC, marked as such."""
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_since(text: str, now: float) -> float:
    """``--since``: a duration back from now (``2h``, ``1d``) or a date/time (UTC unless it
    says otherwise)."""
    try:
        return now - parse_duration(text)
    except (ValueError, TypeError):
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: give a duration (30m, 2h, 7d) or a date/time "
            "(2026-11-28, 2026-11-28T10:00, UTC unless an offset is given)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# -- output -----------------------------------------------------------------------------------


def add_list_options(parser: argparse.ArgumentParser, *, job: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"at most N rows, newest first (default: {DEFAULT_TABLE_LIMIT} for a table, "
        "all for --json; 0 = all)",
    )
    parser.add_argument(
        "--since", metavar="WHEN", help="only rows from then on: 2h, 7d, or 2026-11-28T10:00"
    )
    if job:
        parser.add_argument("--job", metavar="ID", help="only this job id")
    parser.add_argument("--no-pager", action="store_true", help="never page the output")


def add_kind_option(parser: argparse.ArgumentParser, help_text: str, default: str | None) -> None:
    """``--kind KIND``; not argparse's choices: an unknown kind gets the kind table's
    wording (see :func:`chosen_kind`)."""
    parser.add_argument("--kind", default=default, metavar="KIND", help=help_text)


def chosen_kind(args: argparse.Namespace) -> str | None:
    """``--kind`` as given (None: not given, where it is a filter), or a usage error in the
    kind table's words."""
    problem = None if args.kind is None else kind_check(args.kind)
    if problem is not None:
        raise UsageError(f"--kind: {problem}")
    return cast("str | None", args.kind)


def list_limit(args: argparse.Namespace) -> int | None:
    """Rows to ask for: one more than shown, to tell whether some were left out."""
    limit = args.limit
    if limit is None:
        limit = 0 if args.json else DEFAULT_TABLE_LIMIT
    if limit < 0:
        raise UsageError("--limit: must be 0 (all) or more")
    return None if limit == 0 else limit + 1


def print_list(
    args: argparse.Namespace, rows: list[dict[str, Any]], columns: Sequence[str]
) -> None:
    """A table (or JSON) of at most the asked rows, with a note on stderr when cut."""
    asked = list_limit(args)
    cut = asked is not None and len(rows) >= asked
    if cut:
        rows = rows[: asked - 1 if asked else None]
    emit(render(rows, columns, args.json), no_pager=args.no_pager)
    if cut:
        print(
            f"(showing the newest {len(rows)}; --limit N or --limit 0 for more)",
            file=sys.stderr,
        )


def render(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> str:
    if as_json:
        return json.dumps(rows, indent=2, ensure_ascii=False, default=str)
    if not rows:
        return "(none)"
    table = [[cell(col, row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` as one line of plain characters: control and format characters (newlines,
    ANSI and OSC 8 escapes, bidi marks, lone surrogates) and separators other than the
    space are shown escaped (``\\n``, ``\\x1b``). A label or the vendor's ``msg`` can then
    neither forge a row nor drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column.endswith("_at"):
        return show_time(value)
    if isinstance(value, dict):
        return printable(",".join(f"{k}={v}" for k, v in value.items())) or "-"
    if isinstance(value, list):
        return printable(",".join(map(str, value)))
    text = printable(str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def emit(text: str, *, no_pager: bool = False) -> None:
    """Print ``text``; on a terminal through a pager as git does (``$PAGER``, else
    ``less`` with ``LESS=FRX``: it quits at once when the text fits the screen). Never
    when stdout is not a terminal, so pipes and scripts get the text as it is."""
    pager = None if no_pager or not sys.stdout.isatty() else _pager()
    if pager is None:
        print(text)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    sys.stdout.flush()
    try:
        subprocess.run(pager, input=text + "\n", text=True, env=env, check=False)
    except OSError:
        print(text)


def _pager() -> list[str] | None:
    value = os.environ.get("CHANJING_NOTIFIER_PAGER", os.environ.get("PAGER", "less"))
    try:
        command = shlex.split(value)
    except ValueError:
        return None
    if not command or command == ["cat"]:
        return None
    return command
