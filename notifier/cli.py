"""The `chanjing-notifier` command line.

Exit codes: 0 ok, 2 bad usage or bad config (the message names the key), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from notifier import __version__
from notifier import log as logs
from notifier.config import Config, ConfigError, load_config
from notifier.delivery.transition import route
from notifier.intake.queue import take_queue
from notifier.intake.watchfile import WatchFileError, load_watch_file
from notifier.models import DeliveryState, WatchSpec, WatchState, job_id_problem, labels_problem
from notifier.store import Store, StoreError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
CONFIG_ENV = "CHANJING_NOTIFIER_CONFIG"


class UsageError(Exception):
    """Bad usage or bad config: exit 2 with this message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chanjing-notifier",
        description=(
            "Watch Chanjing lip-sync jobs and push a signed webhook or a Slack message when "
            "each one succeeds or fails."
        ),
        epilog=f"The config file comes from -c/--config or ${CONFIG_ENV}. "
        "See README.md for the config reference.",
    )
    parser.add_argument(
        "-c", "--config", metavar="PATH", help=f"config file (default: ${CONFIG_ENV})"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("run", help="run the daemon in the foreground (SIGTERM stops, SIGHUP reloads)")
    sub.add_parser("check", help="validate the config and the watch file, offline")

    watch = sub.add_parser("watch", help="add, list or remove watched jobs")
    wsub = watch.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    add = wsub.add_parser("add", help="watch job ids (safe while the daemon runs)")
    add.add_argument("ids", nargs="+", metavar="ID", help="Chanjing job id")
    add.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="K=V",
        help="label passed through to callbacks (repeatable)",
    )
    add.add_argument(
        "--endpoint",
        action="append",
        default=None,
        metavar="NAME",
        help="notify only this endpoint (repeatable; default: all that match)",
    )
    lst = wsub.add_parser("list", help="every watch with its state, last and next poll")
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    lst.add_argument("--state", choices=[s.value for s in WatchState], help="only this state")
    rm = wsub.add_parser("rm", help="stop watching job ids")
    rm.add_argument("ids", nargs="+", metavar="ID")

    events = sub.add_parser("events", help="terminal events recorded")
    esub = events.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    elist = esub.add_parser("list", help="event id, job id, type, time")
    elist.add_argument("--json", action="store_true", help="print a JSON array")

    deliveries = sub.add_parser("deliveries", help="per-endpoint delivery attempts")
    dsub = deliveries.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    dlist = dsub.add_parser("list", help="deliveries with attempts, state and last error")
    dlist.add_argument("--json", action="store_true", help="print a JSON array")
    dlist.add_argument("--state", choices=[s.value for s in DeliveryState], help="only this state")
    replay = dsub.add_parser(
        "replay",
        help="send events again (all their endpoints; missing deliveries are created "
        "from the current routing)",
    )
    replay.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    replay.add_argument("--dead", action="store_true", help="replay every dead delivery")

    sim = sub.add_parser("simulate", help="run a local stand-in of the Chanjing API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8700)
    sim.add_argument("--qps", type=int, default=10, help="vendor QPS limit to enforce")
    sim.add_argument("--app-id", default="demo-app")
    sim.add_argument("--secret-key", default="demo-secret")
    sim.add_argument(
        "--fault-50000",
        type=float,
        default=0.0,
        metavar="P",
        help="share of detail calls answered 50000",
    )
    sim.add_argument(
        "--fault-html",
        type=float,
        default=0.0,
        metavar="P",
        help="share of detail calls answered with an HTML 502 page",
    )
    sim.add_argument(
        "--slow-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of detail calls answered slowly",
    )
    sim.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="create N demo jobs at start (ids are printed)",
    )
    sim.add_argument(
        "--jobs-file",
        metavar="PATH",
        help="YAML or JSON list of scripted jobs, each {id, queue_s, run_s, outcome, msg, "
        "progress_points, create_time, callback} (all optional)",
    )
    sim.add_argument("--seed", type=int, default=None)

    sub.add_parser("demo", help="everything on embedded defaults, offline, with a live view")
    return parser


# -- helpers ----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[Config, str]:
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        raise UsageError(f"no config file: pass -c/--config PATH or set {CONFIG_ENV}")
    try:
        return load_config(path), path
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _open_store(config: Config) -> Store:
    return Store(config.state.path)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_rows(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    if not rows:
        print("(none)")
        return
    table = [[_cell(col, row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    print("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column.endswith("_at"):
        return _time(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--label {pair!r}: use KEY=VALUE")
        labels[key.strip()] = value
    problem = labels_problem(labels)
    if problem:
        raise UsageError(f"--label: {problem}")
    return labels


# -- commands ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config, path = _load(args)
    logs.configure(config.log.level)
    from notifier.service.daemon import run_daemon
    from notifier.service.instance_lock import AlreadyRunning

    try:
        return run_daemon(config, path)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def cmd_check(args: argparse.Namespace) -> int:
    config, path = _load(args)
    watch_info = "no watch file configured"
    if config.watch.file is not None:
        try:
            specs = load_watch_file(config.watch.file, config.endpoint_names())
        except WatchFileError as exc:
            raise UsageError(str(exc)) from None
        watch_info = f"watch file {config.watch.file}: {len(specs)} job(s)"
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    names = ", ".join(f"{ep.name} ({ep.type})" for ep in config.endpoints) or "none"
    print(f"{path}: OK — endpoints: {names}; {watch_info}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    config, _path = _load(args)
    if args.action == "add":
        for job_id in args.ids:
            problem = job_id_problem(job_id)
            if problem:
                raise UsageError(problem)
        labels = _parse_labels(args.label)
        endpoints = None
        if args.endpoint is not None:
            unknown = [n for n in args.endpoint if n not in config.endpoint_names()]
            if unknown:
                known = ", ".join(config.endpoint_names()) or "none"
                raise UsageError(
                    f"--endpoint: unknown endpoint {', '.join(unknown)} (configured: {known})"
                )
            endpoints = tuple(dict.fromkeys(args.endpoint))
        specs = [WatchSpec(job_id, labels, endpoints) for job_id in dict.fromkeys(args.ids)]
        with _open_store(config) as store, store.transaction():
            store.enqueue(specs)
            # Take the queue at once, in the same transaction: `watch list` right after
            # shows the new rows, and a running daemon that has not loaded an endpoint named
            # here (config edited, no reload yet) never sees the row to reject it. Its
            # deliveries wait, parked, until the daemon runs that endpoint.
            result = take_queue(store, config.endpoint_names())
        print(
            f"watching {len(specs)} job(s): {result.added} new, "
            f"{len(specs) - result.added} already known"
        )
        return EXIT_OK
    if args.action == "list":
        with _open_store(config) as store:
            rows = store.list_watches(args.state)
        columns = [
            "job_id",
            "state",
            "status",
            "progress",
            "labels",
            "last_poll_at",
            "next_poll_at",
            "polls",
            "msg",
        ]
        _print_rows(rows, columns, args.json)
        return EXIT_OK
    if args.action == "rm":
        ids = list(dict.fromkeys(args.ids))
        with _open_store(config) as store:
            missing = [job_id for job_id in ids if store.get_watch(job_id) is None]
            removed = store.remove_watches(ids)
        print(f"removed {removed} of {len(ids)} watch(es)")
        for job_id in missing:
            print(f"no watch for job {job_id}", file=sys.stderr)
        return EXIT_FAILURE if missing else EXIT_OK
    raise UsageError("watch: choose add, list or rm")


def cmd_events(args: argparse.Namespace) -> int:
    config, _path = _load(args)
    if args.action != "list":
        raise UsageError("events: choose list")
    with _open_store(config) as store:
        rows = store.list_events()
    _print_rows(rows, ["event_id", "job_id", "type", "created_at"], args.json)
    return EXIT_OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    config, _path = _load(args)
    if args.action == "list":
        with _open_store(config) as store:
            rows = store.list_deliveries(args.state)
        columns = [
            "id",
            "event_id",
            "job_id",
            "endpoint",
            "state",
            "attempts",
            "last_status",
            "last_attempt_at",
            "next_attempt_at",
            "last_error",
        ]
        _print_rows(rows, columns, args.json)
        return EXIT_OK
    if args.action == "replay":
        if bool(args.event_ids) == bool(args.dead):
            raise UsageError("deliveries replay: give EVENT_ID… or --dead (not both)")
        with _open_store(config) as store:
            if args.dead:
                print(f"replaying {store.replay_dead()} dead delivery(ies)")
                return EXIT_OK
            subs = [(ep.name, list(ep.events)) for ep in config.endpoints]

            def routing(event_type: str, watch_endpoints: tuple[str, ...] | None) -> list[str]:
                # An event whose routing found no endpoint gets its deliveries now; one
                # for an endpoint the daemon does not run yet is parked until it does.
                return route(event_type, watch_endpoints, subs)

            counts = store.replay(args.event_ids, routing)
        missing = [event_id for event_id, n in counts.items() if n == 0]
        print(
            f"replaying {sum(counts.values())} delivery(ies) of "
            f"{len(counts) - len(missing)} event(s)"
        )
        for event_id in missing:
            print(
                f"no deliveries for event {event_id} (unknown event, or no configured "
                "endpoint takes it)",
                file=sys.stderr,
            )
        return EXIT_FAILURE if missing else EXIT_OK
    raise UsageError("deliveries: choose list or replay")


def cmd_simulate(args: argparse.Namespace) -> int:
    from notifier.tools.sim_jobs import SimInputError
    from notifier.tools.simulator import SimConfig, run_simulator

    config = SimConfig(
        app_id=args.app_id,
        secret_key=args.secret_key,
        qps=args.qps,
        fault_50000=args.fault_50000,
        fault_html=args.fault_html,
        slow_rate=args.slow_rate,
        seed=args.seed,
    )
    jobs: list[dict[str, Any]] = [{} for _ in range(args.jobs)]
    if args.jobs_file:
        try:
            with open(args.jobs_file, encoding="utf-8") as handle:
                scripted = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"--jobs-file: {exc}") from None
        if not isinstance(scripted, list):
            raise UsageError(f"--jobs-file: {args.jobs_file}: expected a list of jobs")
        jobs += scripted
    try:
        run_simulator(args.host, args.port, config, jobs)
    except SimInputError as exc:
        raise UsageError(f"--jobs-file: {exc}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from notifier.tools.demo import run_demo

    return run_demo()


COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "watch": cmd_watch,
    "events": cmd_events,
    "deliveries": cmd_deliveries,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if getattr(args, "action", "-") is None:
            raise UsageError(f"{args.command}: missing action (see --help)")
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(
            f"error: {exc}" if not str(exc).startswith("chanjing-notifier") else str(exc),
            file=sys.stderr,
        )
        return EXIT_USAGE
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
