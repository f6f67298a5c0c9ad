"""``run``, ``check``, and the tools apart from the daemon: ``simulate``, ``receive``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from notifier.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, load
from notifier.config import StateConfig
from notifier.config.fields import webhook_secret
from notifier.intake.watchfile import WatchFileError, load_watch_file
from notifier.models import job_id_problem
from notifier.store import (
    Store,
    StoreError,
    default_state_path,
    describe_state,
)

SIM_PORT, SIM_APP_ID, SIM_SECRET = 8700, "demo-app", "demo-secret"
RECEIVE_PORT = 8800


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is a share and must be between 0 and 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (0-65535)")
    return value


def _whsec(text: str) -> str:
    try:
        return webhook_secret(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "run",
        help="run the daemon in the foreground (SIGTERM stops, SIGHUP reloads)",
        parents=[common],
    )
    sub.add_parser(
        "check", help="validate the config and the watch file, offline", parents=[common]
    )

    sim = sub.add_parser(
        "simulate",
        help="run a local stand-in of the Chanjing API",
        description="A local stand-in of the Chanjing API. Point a config at it with "
        f"chanjing.base_url: http://127.0.0.1:{SIM_PORT}, app_id: {SIM_APP_ID}, "
        f"secret_key: {SIM_SECRET} (the defaults below).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=_port, default=SIM_PORT, help="port (0: any free one)")
    sim.add_argument("--qps", type=_count, default=10, help="vendor QPS limit to enforce (0: none)")
    sim.add_argument("--app-id", default=SIM_APP_ID, help="the app id it accepts")
    sim.add_argument("--secret-key", default=SIM_SECRET, help="the secret key it accepts")
    for flag, what in (
        ("--fault-50000", "share of detail calls answered 50000"),
        ("--fault-html", "share of detail calls answered with an HTML 502 page"),
        ("--slow-rate", "share of detail calls answered slowly"),
    ):
        sim.add_argument(flag, type=_probability, default=0.0, metavar="P", help=f"{what} (0-1)")
    sim.add_argument(
        "--jobs", type=_count, default=0, metavar="N", help="create N demo jobs at start"
    )
    sim.add_argument(
        "--jobs-file",
        metavar="PATH",
        help="YAML or JSON list of scripted jobs, each {id, queue_s, run_s, outcome, msg, "
        "progress_points, create_time, callback} (all optional)",
    )
    sim.add_argument("--seed", type=int, default=None, help="random seed")

    rec = sub.add_parser(
        "receive",
        help="print each webhook that arrives, checking its signature",
        description="A receiver to try callbacks out: point an endpoint's url at "
        f"http://127.0.0.1:{RECEIVE_PORT}/ (any path) with the same secret. Requests with a "
        "bad signature are answered 400.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rec.add_argument("--host", default="127.0.0.1", help="address to listen on")
    rec.add_argument("--port", type=_port, default=RECEIVE_PORT, help="port (0: any free one)")
    rec.add_argument(
        "--secret",
        action="append",
        type=_whsec,
        default=[],
        metavar="WHSEC",
        help="whsec_… secret to verify with (repeatable; none: accept unverified)",
    )
    rec.add_argument("--json", action="store_true", help="one JSON object per request")

    sub.add_parser("demo", help="everything on embedded defaults, offline, with a live view")


def cmd_run(args: argparse.Namespace) -> int:
    config, path = load(args)
    from notifier import log as logs
    from notifier.service.daemon import run_daemon
    from notifier.service.instance_lock import AlreadyRunning

    logs.configure(config.log.level)

    try:
        return run_daemon(config, path)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def cmd_check(args: argparse.Namespace) -> int:
    config, path = load(args)
    watch_info = "no watch file configured"
    if config.watch.file is not None:
        if not config.watch.file.exists():
            raise UsageError(
                f"{path}: watch.file: {config.watch.file}: file not found (create it: a YAML "
                "list of job ids, [] for none; or leave watch.file out)"
            )
        try:
            specs = load_watch_file(config.watch.file, config.endpoint_names())
        except WatchFileError as exc:
            raise UsageError(
                "\n".join(f"{path}: watch.file: {line}" for line in exc.problems)
            ) from None
        watch_info = f"watch file {config.watch.file}: {len(specs)} job(s)"
    state = _state_info(path, config.state)
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    names = ", ".join(f"{ep.name} ({ep.type})" for ep in config.endpoints) or "none"
    print(f"{path}: OK — endpoints: {names}; {watch_info}")
    print(f"state: {state}")
    return EXIT_OK


def _state_info(path: str, config: StateConfig) -> str:
    """Where the state is and whether it exists; a missing directory other than the
    default one is a mistake to report now, not an empty state to start on later."""
    if config.url is not None:
        return _database_info(config)
    state = config.path
    if state.exists():
        try:
            with Store(state, create=False) as store:
                counts = store.watch_counts()
        except StoreError as exc:
            raise UsageError(f"{path}: state.path: {exc}") from None
        return f"{state} (exists: {counts.get('active', 0)} active watch(es))"
    parent = state.absolute().parent
    if parent.is_dir() or parent == default_state_path().parent:
        return f"{state} (does not exist yet: `run` creates it)"
    raise UsageError(
        f"{path}: state.path: directory {parent} does not exist (mistyped? create it first)"
    )


def _database_info(config: StateConfig) -> str:
    """A PostgreSQL state, named: ``check`` touches no network, the database included."""
    where = describe_state(config)
    return f"{where} (PostgreSQL; not contacted by check: `run` creates its tables)"


def cmd_simulate(args: argparse.Namespace) -> int:
    from notifier.tools.sim_jobs import SimInputError
    from notifier.tools.simulator import SimConfig, VendorSimulator, run_simulator

    config = SimConfig(
        app_id=args.app_id,
        secret_key=args.secret_key,
        qps=args.qps,
        fault_50000=args.fault_50000,
        fault_html=args.fault_html,
        slow_rate=args.slow_rate,
        seed=args.seed,
    )
    jobs: list[Any] = [{} for _ in range(args.jobs)]
    if args.jobs_file:
        scripted = _scripted_jobs(args.jobs_file)
        trial = VendorSimulator(config)  # each item checked alone, so errors can name it
        for number, item in enumerate(scripted, 1):
            try:
                trial.add_job_from_mapping(item)
            except SimInputError as exc:
                raise UsageError(f"--jobs-file {args.jobs_file}: item {number}: {exc}") from None
        jobs += scripted
    try:
        run_simulator(args.host, args.port, config, jobs)
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
            "(pick another --port, or 0 for any free one)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


def _scripted_jobs(path: str) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            scripted = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--jobs-file: {exc}") from None
    if not isinstance(scripted, list):
        raise UsageError(f"--jobs-file {path}: expected a list of jobs")
    for number, item in enumerate(scripted, 1):
        if isinstance(item, dict) and "id" in item:
            problem = job_id_problem(item["id"])
            if problem:
                raise UsageError(f"--jobs-file {path}: item {number}: {problem}")
    return scripted


def cmd_receive(args: argparse.Namespace) -> int:
    from notifier.tools.receiver import run_receiver

    try:
        run_receiver(args.host, args.port, args.secret, as_json=args.json)
    except ValueError as exc:
        raise UsageError(f"--secret: {exc}") from None
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from notifier.tools.demo import run_demo

    return run_demo()
