"""``watch add | list | show | rm | rejected``.

A watch is an account, a kind and a job id: ``--kind`` (default ``lip_sync``) and
``--account`` (default: the only account, or the one marked default) name which of two
watches of one id a command means, and ``watch list --kind/--account`` shows one kind's or
one account's. ``--account`` of ``list``, ``show`` and ``rm`` may name an account no longer
configured: its watches stay in the state until it returns."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from notifier.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    NoState,
    UsageError,
    add_kind_option,
    add_list_options,
    cell,
    chosen_kind,
    list_limit,
    load,
    open_store,
    open_writable,
    parse_since,
    print_list,
    render,
    show_time,
)
from notifier.config import Config
from notifier.config.accounts import account_name
from notifier.intake.adding import REOPENABLE, LabelsTooMany, add_watches, find_watch, watch_row
from notifier.kinds import DEFAULT_KIND, KINDS
from notifier.models import EVENT_TYPES, WatchState
from notifier.store import StoreError
from notifier.watchspec import AccountRule, Problem, parse_watches

#: The states ``--reopen`` takes, for its message.
_REOPENABLE_TEXT = ", ".join(REOPENABLE[:-1]) + " or " + REOPENABLE[-1]

#: `watch list` columns; PHASE is where the job was at the last answer, whatever its kind's
#: own status codes (`watch show` has the vendor's status); SEEN counts every vendor answer
#: about the job (detail polls and sightings in list sweeps alike); SOURCE is where the
#: watch came from (file, queue, discovery, callback).
LIST_COLUMNS = [
    "job_id",
    "kind",
    "state",
    "phase",
    "progress",
    "endpoints",
    "labels",
    "seen",
    "errors",
    "last_poll_at",
    "next_poll_at",
    "source",
    "note",
]


_KIND_HELP = f"the jobs' kind: {', '.join(KINDS)} (default: {DEFAULT_KIND})"
_ACCOUNT_HELP = "the jobs' vendor account (default: the only one, or the one marked default)"


def add_account_option(parser: argparse.ArgumentParser, help_text: str = _ACCOUNT_HELP) -> None:
    """``--account NAME`` (checked by :func:`chosen_account` or the parser, not argparse)."""
    parser.add_argument("--account", default=None, metavar="NAME", help=help_text)


def account_filter(args: argparse.Namespace) -> str | None:
    """``--account`` of a list (None: every account): any well-formed name, configured or
    not (a removed account's watches and events stay in the state)."""
    if args.account is None:
        return None
    try:
        return account_name(args.account)
    except ValueError as exc:
        raise UsageError(f"--account: {exc}") from None


def account_columns(
    columns: Sequence[str], config: Config, rows: list[dict[str, Any]]
) -> list[str]:
    """``columns`` with ``account`` after ``job_id`` when it tells rows apart: the config
    has several accounts, or the rows do (a removed account's); ``--json`` always has it."""
    named = {r.get("account") for r in rows} - {None}  # None: an event of no account
    several = len(config.vendor_accounts()) > 1 or len(named) > 1
    if not several:
        return list(columns)
    at = list(columns).index("job_id") + 1
    return [*columns[:at], "account", *columns[at:]]


def chosen_account(args: argparse.Namespace, config: Config) -> str:
    """The account ``show`` and ``rm`` mean: ``--account`` (well-formed, configured or not),
    else the config's default one; a usage error when it has none."""
    named = account_filter(args)
    if named is not None:
        return named
    default = config.default_account()
    if default is None:
        raise UsageError(f"--account: {AccountRule.configured(config).missing()}")
    return default


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    watch = sub.add_parser("watch", help="add, list or remove watched jobs", parents=[common])
    wsub = watch.add_subparsers(dest="action", metavar="ACTION", parser_class=type(watch))
    add = wsub.add_parser(
        "add", help="watch job ids (safe while the daemon runs)", parents=[common]
    )
    add.add_argument("ids", nargs="+", metavar="ID", help="Chanjing job id")
    add.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="K=V",
        help="label passed through to callbacks (repeatable; merged into a known watch's)",
    )
    add.add_argument(
        "--endpoint",
        action="append",
        default=None,
        metavar="NAME",
        help="notify only this endpoint (repeatable; default: all that match, or what a "
        "known watch already has)",
    )
    add.add_argument(
        "--reopen",
        action="store_true",
        help="watch an expired, failed or rejected id again (polled at once, give_up_after anew)",
    )
    add_kind_option(add, _KIND_HELP, DEFAULT_KIND)
    add_account_option(add)
    lst = wsub.add_parser(
        "list", help="watches, newest first, with their problems", parents=[common]
    )
    add_list_options(lst)
    lst.add_argument("--state", choices=[s.value for s in WatchState], help="only this state")
    add_kind_option(lst, f"only this kind ({', '.join(KINDS)})", None)
    add_account_option(lst, "only this vendor account's watches")
    show = wsub.add_parser(
        "show", help="one watch, every field (the vendor's own status too)", parents=[common]
    )
    show.add_argument("id", metavar="ID", help="Chanjing job id")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    add_kind_option(show, _KIND_HELP, DEFAULT_KIND)
    add_account_option(show)
    rm = wsub.add_parser("rm", help="stop watching job ids", parents=[common])
    rm.add_argument("ids", nargs="+", metavar="ID", help="Chanjing job id")
    add_kind_option(rm, _KIND_HELP, DEFAULT_KIND)
    add_account_option(rm)
    rej = wsub.add_parser(
        "rejected", help="queue rows the daemon refused, with the reason", parents=[common]
    )
    rej.add_argument("--json", action="store_true", help="print a JSON array")
    rej.add_argument("--clear", action="store_true", help="delete them (after showing them)")


def _parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """``--label K=V`` pairs as a mapping (the labels themselves are the parser's to judge)."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--label {pair!r}: use KEY=VALUE")
        labels[key.strip()] = value
    return labels


#: The option each part of a watch request came from, to frame the parser's problems.
_OPTION = {
    "labels": "--label",
    "endpoints": "--endpoint",
    "kind": "--kind",
    "account": "--account",
}


def _usage(problems: Sequence[Problem]) -> UsageError:
    """The parser's problems in the command line's frame: an id's as they are (they name
    the id), the others after the option that gave them."""
    said = [
        p.msg if isinstance(p.loc[0], int) else f"{_OPTION[str(p.loc[0])]}: {p.msg}"
        for p in problems
    ]
    return UsageError("; ".join(dict.fromkeys(said)))


def _unreachable(config: Config, endpoints: Sequence[str]) -> list[str]:
    """Event types none of the named endpoints takes: such a job ending that way notifies
    nobody."""
    taken = {t for ep in config.endpoints if ep.name in endpoints for t in ep.event_types()}
    return [t for t in EVENT_TYPES if t not in taken]


def cmd_watch(args: argparse.Namespace) -> int:
    if args.action == "add":
        return _add(args)
    if args.action == "list":
        return _list(args)
    if args.action == "show":
        return _show(args)
    if args.action == "rm":
        return _rm(args)
    if args.action == "rejected":
        return _rejected(args)
    raise UsageError("watch: choose add, list, show, rm or rejected")


def _add(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    parsed = parse_watches(
        args.ids,
        _parse_labels(args.label),
        args.endpoint,
        endpoints_configured=config.endpoint_names(),
        ids_at=(),
        kind=args.kind,
        account=args.account,
        accounts=(rule := AccountRule.configured(config)),
    )
    if parsed.problems:
        raise _usage(parsed.problems)
    first = parsed.specs[0]
    labels, endpoints = first.labels, first.endpoints
    if endpoints is not None:
        missed = _unreachable(config, endpoints)
        if missed:
            print(
                f"warning: {', '.join(endpoints)} take(s) no {' or '.join(missed)}: "
                "such an outcome of these jobs notifies nobody",
                file=sys.stderr,
            )
    with open_writable(config) as store:
        try:
            outcome = add_watches(
                store,
                args.ids,
                labels,
                endpoints,
                config.endpoint_names(),
                reopen=args.reopen,
                kind=first.kind,
                account=first.account,
                accounts=rule,
            )
        except LabelsTooMany as exc:
            raise UsageError(f"--label: {exc}") from None
    lines: list[str] = []
    refused: list[str] = []
    for job_id in outcome.ids:
        if job_id in outcome.known:
            lines.append(f"{job_id}: already watched (labels merged)")
        elif job_id in outcome.reopened:
            lines.append(f"{job_id}: {outcome.reopened[job_id]}, watched again")
        elif job_id in outcome.finished:
            known = outcome.finished[job_id]
            since = show_time(known["finished_at"])
            if args.reopen:  # asked for and not done: say why, and fail
                refused.append(
                    f"{job_id}: not reopened: it {known['state']} at {since}; --reopen watches "
                    f"again only {_REOPENABLE_TEXT} jobs (one event per job)"
                )
                continue
            hint = (
                "; --reopen watches it again"
                if known["state"] in REOPENABLE
                else " (one event per job)"
            )
            lines.append(f"{job_id}: not watched: {known['state']} since {since}{hint}")
    finished = len(outcome.finished)
    watched = outcome.watched
    print(
        f"watching {watched} job(s): {outcome.added} new, {watched - outcome.added} already known"
        + (f"; {finished} finished (not watched)" if finished else "")
    )
    for line in lines:
        print(line)
    for line in refused:
        print(line, file=sys.stderr)
    return EXIT_FAILURE if refused else EXIT_OK


def _list(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    kind, account = chosen_kind(args), account_filter(args)
    try:
        with open_store(config) as store:
            since = None if args.since is None else parse_since(args.since, store.now())
            rows = store.list_filtered(
                "watches",
                state=args.state,
                job=args.job,
                since=since,
                limit=list_limit(args),
                kind=kind,
                account=account,
            )
    except NoState as exc:
        print(f"note: {exc}", file=sys.stderr)
        rows = []
    for row in map(watch_row, rows):
        if not args.json:
            row["endpoints"] = row["endpoints"] if row["endpoints"] is not None else "all"
            row["note"] = row["last_error"] or row["msg"]
    print_list(args, rows, account_columns(LIST_COLUMNS, config, rows))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    kind = chosen_kind(args) or DEFAULT_KIND
    account = chosen_account(args, config)
    try:
        store = open_store(config)
    except NoState as exc:
        raise StoreError(str(exc)) from None
    with store:
        row = find_watch(store, args.id, kind, account)
    if row is None:
        print(f"no {kind} watch for job {args.id}{_on(account, config)}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(row, indent=2, ensure_ascii=False, default=str))
    else:
        width = max(map(len, row))
        for key, value in row.items():
            print(f"{key.ljust(width)}  {cell(key, value)}")
    return EXIT_OK


def _rm(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    kind = chosen_kind(args) or DEFAULT_KIND
    account = chosen_account(args, config)
    ids = list(dict.fromkeys(args.ids))
    try:
        store = open_store(config)
    except NoState as exc:
        raise StoreError(str(exc)) from None
    with store:
        known = {job_id: store.watch_summary(job_id, kind=kind, account=account) for job_id in ids}
        removed = store.remove_watches(ids, kind=kind, account=account)
    print(f"removed {removed} of {len(ids)} watch(es)")
    from_file = [j for j, w in known.items() if w is not None and w["source"] == "file"]
    if from_file:
        where = config.watch.file or "the watch file"
        print(
            f"note: {', '.join(from_file)} come(s) from {where}: removed only until the "
            "daemon re-reads it (SIGHUP or an edit); delete them from the file to stop "
            "watching them for good",
            file=sys.stderr,
        )
    missing = [job_id for job_id, w in known.items() if w is None]
    of = "" if kind == DEFAULT_KIND else f"{kind} "
    for job_id in missing:
        print(f"no {of}watch for job {job_id}{_on(account, config)}", file=sys.stderr)
    return EXIT_FAILURE if missing else EXIT_OK


def _on(account: str, config: Config) -> str:
    """`` on account NAME`` where a config has several (one account needs no name)."""
    return "" if len(config.vendor_accounts()) == 1 else f" on account {account}"


def _rejected(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    try:
        store = open_store(config)
    except NoState as exc:
        print(f"note: {exc}", file=sys.stderr)
        print(render([], [], args.json))
        return EXIT_OK
    with store:
        rows = store.rejected_queue_rows()
        cleared = store.clear_rejected() if args.clear else 0
    for row in rows:
        for key in ("labels", "endpoints"):
            if args.json and isinstance(row[key], str):
                # Shown as it was written when it is not JSON: that may be why it was refused.
                with contextlib.suppress(ValueError):
                    row[key] = json.loads(row[key])
    columns = ["seq", "kind", "job_id", "labels", "endpoints", "enqueued_at", "rejected"]
    columns = account_columns(columns, config, rows)
    print(render(rows, columns, args.json))
    if args.clear:
        print(f"cleared {cleared} rejected row(s)", file=sys.stderr)
    return EXIT_OK
