"""``run``, ``check``, and the tools apart from the daemon: ``simulate``, ``receive``, ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import yaml

from notifier.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, load
from notifier.config import Config
from notifier.config.fields import webhook_secret
from notifier.intake.watchfile import WatchFileError, load_watch_file
from notifier.models import job_id_problem
from notifier.service.state_settings import state_settings
from notifier.store import (
    StateSettings,
    Store,
    StoreError,
    default_state_path,
    describe_state,
)
from notifier.watchspec import AccountRule

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


def _sim_account(text: str) -> tuple[str, str, int | None]:
    """``APP_ID:SECRET[:QPS]`` of ``simulate --account`` (the secret is never echoed back)."""
    app_id, _, rest = text.partition(":")
    secret, qps = rest, None
    head, _, tail = rest.rpartition(":")
    if head and tail.isdigit():
        secret, qps = head, int(tail)
    if not app_id or not secret:
        raise argparse.ArgumentTypeError(
            "must be APP_ID:SECRET or APP_ID:SECRET:QPS (e.g. --account shop-b:secret-b:10)"
        )
    return app_id, secret, qps


def _url_path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a path (it starts with /)")
    return text


def _whsec(text: str) -> str:
    try:
        return webhook_secret(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


RUN_HELP = """\
Run the daemon in the foreground: poll the vendor for the watched jobs and send each
endpoint its callbacks. Logs go to stderr (log.level); under systemd it reports ready
and keeps the watchdog fed.

Signals: SIGHUP re-reads the config and the watch file (a broken config is logged and
the running one kept); SIGTERM or SIGINT (Ctrl-C) stop it gracefully: in-flight
requests get 5 s, and it exits within 10 s.

Creates the state (state.path, and its directory only when that is the default
/var/lib/chanjing-notifier; or its tables in the state.url database).

Exit codes: 0 stopped by a signal; 2 bad config (the message names the key); 1 any
other failure at start-up (another daemon holds the state file, a listener's port is
taken, the state cannot be opened).
"""

CHECK_HELP = """\
Validate the config file the way `run` reads it (every key, ${VAR} references, endpoint
secrets and events) and the watch file (each id, label and endpoint name), and say where the
state is and whether it exists. Warns (on stderr, exit 0 all the same) about things that
are allowed but probably not meant: plain http to a remote host, a listener without
tokens, two listeners on one port.

Offline: no network unless --online, and a state.url database is named, not contacted.
--online makes one token call to chanjing.base_url with the configured app_id and
secret_key. The vendor keeps one live token per app_id: a daemon running on the account
fetches a new one on its next call (and counts a token revocation).

Exit codes: 0 valid; 2 bad config or watch file, or --online credentials refused
(the message names the file, the key and the problem); 1 --online could not reach the
vendor (connection failed, timed out, or an answer that is not the vendor's).
"""

DEMO_HELP = """\
Run the whole product on embedded defaults, offline, in one process: a stand-in of the
Chanjing API, a receiver that verifies every signature, a throw-away state and the real
daemon, all on 127.0.0.1. Twelve jobs with mixed outcomes reach the daemon each way a job
can (watch file, queue, HTTP intake API, vendor callback, discovery, gateway). A live
table on a terminal, one line per fact otherwise. Needs no config. Takes about 20 s.

Exit codes: 0 every expected callback arrived and verified; 1 one did not (the summary
says which); 130 interrupted (Ctrl-C).
"""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    sub.add_parser(
        "run",
        help="run the daemon in the foreground (SIGTERM stops, SIGHUP reloads)",
        description=RUN_HELP,
        formatter_class=raw,
        parents=[common],
    )
    check = sub.add_parser(
        "check",
        help="validate the config and the watch file, offline (--online: the credentials too)",
        description=CHECK_HELP,
        formatter_class=raw,
        parents=[common],
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also make one token call to chanjing.base_url with the configured credentials",
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
    sim.add_argument(
        "--account",
        type=_sim_account,
        action="append",
        default=argparse.SUPPRESS,  # none: no "(default: [])" in --help
        metavar="APP_ID:SECRET[:QPS]",
        help="another vendor account to serve besides --app-id's, with its own QPS budget "
        "(default --qps), token and jobs; repeatable. A call belongs to the account whose "
        "token it presents; a --jobs-file item's `account` names one (default: --app-id's)",
    )
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
        help="YAML or JSON list of scripted jobs, each {kind, id, queue_s, run_s, outcome, msg, "
        "progress_points, create_time, callback, later_status, later_s, account} (all "
        "optional; kind: lip_sync, video, customised_person, voice_clone, tts or ai_creation, "
        "default lip_sync)",
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
    rec.add_argument(
        "--slack-path",
        action="append",
        type=_url_path,
        default=[],
        metavar="PATH",
        help="take unsigned Slack-format posts on this path (repeatable) while the other "
        "paths are verified with --secret",
    )
    rec.add_argument("--json", action="store_true", help="one JSON object per request")

    sub.add_parser(
        "demo",
        help="everything on embedded defaults, offline, with a live view",
        description=DEMO_HELP,
        formatter_class=raw,
    )


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
            rule = AccountRule.configured(config)
            specs = load_watch_file(config.watch.file, config.endpoint_names(), rule)
        except WatchFileError as exc:
            raise UsageError(
                "\n".join(f"{path}: watch.file: {line}" for line in exc.problems)
            ) from None
        watch_info = f"watch file {config.watch.file}: {len(specs)} job(s)"
    state = _state_info(path, state_settings(config))
    for warning in [*config.warnings(), *_shared_ports(config)]:
        print(f"warning: {warning}", file=sys.stderr)
    names = ", ".join(f"{ep.name} ({ep.type})" for ep in config.endpoints) or "none"
    print(f"{path}: OK — endpoints: {names}; {watch_info}")
    print(f"state: {state}")
    if args.online:
        return _check_online(path, config)
    return EXIT_OK


_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "*", ""})


def _shared_ports(config: Config) -> list[str]:
    """Two listeners on one port (the same host, or one on every address): `run` would
    fail to bind the second."""
    listeners = [
        (key, section.listen, section.address())
        for key, section in (
            ("intake.listen", config.intake),
            ("metrics.listen", config.metrics),
            ("gateway.listen", config.gateway),
        )
    ]
    out = []
    for i, (key, listen, address) in enumerate(listeners):
        for other, other_listen, other_address in listeners[i + 1 :]:
            if address is None or other_address is None or address[1] != other_address[1]:
                continue
            hosts = {address[0], other_address[0]}
            if len(hosts) == 1 or hosts & _WILDCARD_HOSTS:
                out.append(
                    f"{key}: {listen} and {other}: {other_listen} share a port; "
                    "the daemon cannot listen on both (give each its own port)"
                )
    return out


def _check_online(path: str, config: Config) -> int:
    """One token call per account with its credentials; the secret is never printed."""
    from notifier.polling.vendor import CredentialsRejected, VendorError, check_credentials
    from notifier.service.settings import vendor_settings

    single = config.accounts is None
    worst = EXIT_OK
    for i, account in enumerate(config.vendor_accounts()):
        key = "chanjing" if single else f"accounts[{i}] ({account.name})"
        base_url = account.base_url
        try:
            asyncio.run(check_credentials(vendor_settings(account)))
        except CredentialsRejected as exc:
            print(
                f"error: {path}: {key}.app_id/{key}.secret_key: refused by {key}.base_url "
                f"{base_url}: {exc}",
                file=sys.stderr,
            )
            worst = max(worst, EXIT_USAGE)
            continue
        except VendorError as exc:
            print(f"error: online: {key}: no token from the vendor: {exc}", file=sys.stderr)
            worst = max(worst, EXIT_FAILURE)
            continue
        print(f"online: OK — {key}.base_url {base_url} issued a token for these credentials")
    return worst


def _state_info(path: str, settings: StateSettings) -> str:
    """Where the state is and whether it exists; a missing directory other than the
    default one is a mistake to report now, not an empty state to start on later."""
    if settings.shared:
        return _database_info(settings)
    state = settings.path
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


def _database_info(settings: StateSettings) -> str:
    """A PostgreSQL state, named: ``check`` touches no network, the database included."""
    where = describe_state(settings)
    return f"{where} (PostgreSQL; not contacted by check: `run` creates its tables)"


def cmd_simulate(args: argparse.Namespace) -> int:
    from notifier.tools.sim_accounts import SimAccount
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
        accounts=tuple(
            SimAccount(app_id, secret, args.qps if qps is None else qps)
            for app_id, secret, qps in getattr(args, "account", [])
        ),
    )
    try:
        trial = VendorSimulator(config)  # job items checked alone, so errors can name them
    except SimInputError as exc:
        raise UsageError(f"--app-id/--account: {exc}") from None
    jobs: list[Any] = [{} for _ in range(args.jobs)]
    if args.jobs_file:
        scripted = _scripted_jobs(args.jobs_file)
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
        run_receiver(
            args.host, args.port, args.secret, as_json=args.json, slack_paths=args.slack_path
        )
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
