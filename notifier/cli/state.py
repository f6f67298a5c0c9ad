"""``state migrate``: move a SQLite state into the PostgreSQL database of ``state.url``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notifier.cli.common import EXIT_OK, UsageError, load
from notifier.service.instance_lock import AlreadyRunning, InstanceLock
from notifier.store import Store, StoreError

if TYPE_CHECKING:
    from notifier.store.transfer import Summary

#: Exit code after Ctrl-C, as the shell reports it.
EXIT_INTERRUPTED = 130


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    state = sub.add_parser("state", help="move the state between backends", parents=[common])
    ssub = state.add_subparsers(dest="action", metavar="ACTION", parser_class=type(state))
    migrate = ssub.add_parser(
        "migrate",
        help="copy a SQLite state file into the PostgreSQL database of state.url (stop the "
        "daemon first); all or nothing",
        parents=[common],
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="FILE", help="the SQLite state file"
    )
    migrate.add_argument(
        "--replace",
        action="store_true",
        help="delete the watches, queue, events and deliveries the database already holds "
        "(in the same transaction); without it a database that holds any is refused",
    )
    migrate.add_argument("--json", action="store_true", help="print the summary as JSON")


def cmd_state(args: argparse.Namespace) -> int:
    if args.action != "migrate":
        raise UsageError("state: choose migrate")
    config, _path = load(args, secrets=False)
    if config.state.url is None:
        raise UsageError(
            f"state migrate copies into the PostgreSQL database of state.url, but this config "
            f"keeps its state in a SQLite file (state.path: {config.state.path}); set "
            "state.url (and remove state.path) in the config the daemon will run with"
        )
    source = Path(args.source)
    if not source.is_file():
        raise StoreError(f"{source}: no such state file")
    try:
        # Held until the copy is committed: no daemon runs on the source, nor starts on it.
        with InstanceLock(source):
            return _migrate(args, source, config.state.url)
    except AlreadyRunning as exc:
        who = f"pid {exc.holder}" if exc.holder else "another process"
        raise StoreError(
            f"{source}: a daemon ({who}) is running on this state file; stop it before "
            "migrating (a running daemon would go on changing what is being copied)"
        ) from None
    except OSError as exc:
        raise StoreError(f"{source}: cannot take the daemon's lock beside it: {exc}") from None


def _migrate(args: argparse.Namespace, source_path: Path, url: str) -> int:
    # Imported here: the lease (structlog) and the copier (psycopg) are for this command only.
    from notifier.polling.lease import LEASE_NAME
    from notifier.store.transfer import copy_state

    # Opening upgrades an older schema in place, as any command of this version would, and
    # refuses a newer one; the target gets its tables as the daemon would create them.
    with Store(source_path, create=False) as source, Store(url) as target:
        holder = target.lease_holder(LEASE_NAME)
        if holder is not None:
            raise StoreError(
                f"{target.where}: a daemon ({holder[0]}) is running on this database (it holds "
                "the vendor lease); stop every daemon on it before migrating"
            )

        def progress(table: str, rows: int, seconds: float) -> None:
            print(f"{table}: {rows} row(s) copied ({seconds:.1f} s)", file=sys.stderr, flush=True)

        print(f"copying {source.where} into {target.where} ...", file=sys.stderr, flush=True)
        try:
            summary = copy_state(source, target, replace=args.replace, progress=progress)
        except KeyboardInterrupt:
            print(f"interrupted: nothing was written to {target.where}", file=sys.stderr)
            return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(_render(summary))
    return EXIT_OK


def _render(summary: Summary) -> str:
    def split(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {state}" for state, n in counts.items() if n)

    rows = summary.rows
    notes = {
        "watch_queue": split(summary.as_dict()["queue"]),
        "watches": split(summary.watches),
        "deliveries": split(summary.deliveries),
    }
    width = max(map(len, rows))
    lines = [f"copied {summary.source} into {summary.target} in {summary.seconds:.1f} s:"]
    for table, count in rows.items():
        note = f"  ({notes[table]})" if notes.get(table) else ""
        lines.append(f"  {table.ljust(width)}  {count:>8}{note}")
    if summary.replaced:
        gone = ", ".join(f"{n} {table}" for table, n in summary.replaced.items())
        lines.append(f"replaced what the database held before: {gone}")
    lines.append(
        "not copied: the vendor lease (no daemon holds one yet). Start the daemons with this "
        "config; keep the SQLite file until they run well."
    )
    return "\n".join(lines)
