"""Several vendor accounts (issue 22): each account's budget, its isolation, its lease.

The real daemon on the shared harness (:mod:`bench.harness`: the simulator serving several
accounts and a verifying receiver on 127.0.0.1), each number next to a baseline measured in
the same run:

a. **Two accounts, one daemon, SQLite.** Accounts ``a`` and ``b`` (``--qps`` each). B's
   workload (``--jobs`` jobs finishing over ~30 s, seeded) runs on a fresh daemon with
   ``a`` idle (the baseline) and with ``a`` saturated by ``--backlog`` open jobs, alternately
   ``--repeat`` times each (the sides' latencies pooled: one run's p95 is a few jobs), b's
   jobs created at the same offset from the daemon's start on both sides (the phase of the
   list sweeps; the repeats spread it over one sweep interval). In
   each, once half of B's jobs were notified, a's token is revoked on the simulator. Rows:
   each account's vendor calls per calendar second (the simulator's count per account: max,
   seconds over qps), b's detection p50 / p95 (vendor-side completion to the first webhook)
   and the ratio to b alone (target ≤ 1.10), the token fetches and 10400 answers after the
   revocation (target for b: 0 new).
b. **Three nodes, six accounts, one PostgreSQL** (``CHANJING_NOTIFIER_TEST_PG`` or a
   throwaway server, as :mod:`bench.ha`). Each account has a backlog of open jobs and
   ``--jobs-b`` jobs finishing throughout. After settling each node holds two leases (read
   from each node's ``/metrics``); one is killed (``kill -9``) and the time until each of
   its accounts' lease is held by another node is taken (target ≤ ``state.lease`` + 1 s).
   Then: every finished job notified (0 lost), exactly one event (webhook id) per job, no
   account over its budget in any second (target: one account's ``qps``).

Prints the tables and PASS/FAIL lines, writes ``bench/out/accounts.json``. Run:
``python -m bench.accounts`` (about 4.5 min on 2 cores; ``--only a`` or ``--only b`` for one
scenario, ``--lease 3`` is quicker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    CallbackTracker,
    Credentials,
    Daemon,
    EndpointSpec,
    Servers,
    daemon_config,
    daemon_env,
    free_port,
    install_sigterm_exit,
    start_daemon,
    work_dir,
    write_config,
)
from bench.report import fmt, quantile, table, verdict
from notifier import kinds
from notifier.models import WatchSpec
from notifier.polling.lease import STANDBY_EVERY
from notifier.store import Store
from notifier.tools.sim_accounts import SimAccount
from tests.kit import PgServer

ENDPOINT = EndpointSpec("bench", "/hook")
WAIT_S = 180.0
#: b's detection p95 beside a saturated a, against b alone.
RATIO_TARGET = 1.10
#: a: b's jobs are created this long after the daemon is ready (a saturates meanwhile).
START_AFTER = 6.0
#: The shipped ``polling.min_interval``: list sweeps run this often from the start.
SWEEP_EVERY = 5.0
#: Where b's list sweeps go (its pages are counted per run).
LIST_PATH = next(k.listing.path for k in [kinds.get(kinds.DEFAULT_KIND)] if k.listing)
HELD = re.compile(r'^chanjing_lease_held\{account="([^"]+)",node="[^"]*"\} 1\.0$', re.M)


@dataclass(frozen=True)
class Account:
    """One vendor account: the daemon's name for it, its app on the simulator, its budget."""

    name: str
    secret: str
    qps: int

    @property
    def app_id(self) -> str:
        return f"bench-{self.name}"

    @property
    def env(self) -> str:
        return f"BENCH_SECRET_{self.name.upper()}"


def make_accounts(names: Sequence[str], qps: int) -> list[Account]:
    return [Account(name, Credentials.generate().secret_key, qps) for name in names]


# --------------------------------------------------------------------------- a cluster


@dataclass
class Cluster:
    """The simulator serving ``accounts``, the receiver, one state and the daemons on it."""

    work: Path
    accounts: list[Account]
    state: dict[str, Any]
    servers: Servers
    credentials: Credentials
    store: Store
    daemons: dict[str, Daemon] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def start(self, node: str) -> Daemon:
        """A daemon named ``node`` with its own metrics listener, ready."""
        port = free_port()
        config = daemon_config(
            state_path=self.work / "state.db",
            sim_url=self.servers.sim_url,
            receiver_url=self.servers.receiver_url,
            endpoints=[ENDPOINT],
            log_level="info",
            sections={"metrics": {"listen": f"127.0.0.1:{port}"}},
        )
        del config["chanjing"]
        config["accounts"] = [
            {
                "name": a.name,
                "base_url": self.servers.sim_url,
                "app_id": a.app_id,
                "secret_key": "${" + a.env + "}",
                "qps": a.qps,
            }
            for a in self.accounts
        ]
        config["state"] = {**self.state, "node": node}
        path = self.work / f"{node}.yaml"
        write_config(path, config)
        env = daemon_env(self.credentials, **{a.env: a.secret for a in self.accounts})
        daemon = start_daemon(path, env, self.work / f"{node}.log")
        self.daemons[node] = daemon
        self.metrics[node] = f"http://127.0.0.1:{port}/metrics"
        daemon.wait_ready()
        return daemon

    def jobs(self, account: str, n: int, **timeline: Any) -> list[str]:
        """``n`` jobs on the simulator as ``account``, watched straight in the state as a
        queue row becomes a watch (no wait for the daemon's next look at the queue), each
        polled at once."""
        app = self.account(account).app_id
        ids = [self.servers.sim.add_job(account=app, **timeline) for _ in range(n)]
        self.store.add_watches([WatchSpec(j, {}, account=account) for j in ids], "queue")
        return ids

    def stats(self, account: str) -> dict[str, Any]:
        """The simulator's counters of ``account`` alone."""
        app = self.account(account).app_id
        return dict(self.servers.sim.stats(app)["accounts"][app])

    def completed_at(self, account: str) -> dict[str, float]:
        app = self.account(account).app_id
        return {
            j["id"]: float(j["completed_at"])
            for j in self.servers.sim.jobs(app)
            if j.get("completed_at") is not None
        }

    def held(self, node: str) -> set[str]:
        """The accounts whose lease ``node`` holds, by its metrics."""
        try:
            text = httpx.get(self.metrics[node], timeout=2).text
        except httpx.HTTPError:
            return set()
        return set(HELD.findall(text))


@contextlib.contextmanager
def cluster(work: Path, accounts: list[Account], state: dict[str, Any]) -> Iterator[Cluster]:
    first, *others = accounts
    credentials = Credentials(first.app_id, first.secret, Credentials.generate().webhook_secret)
    extra = [SimAccount(a.app_id, a.secret, a.qps) for a in others]
    work.mkdir(parents=True, exist_ok=True)
    location = state.get("url") or state["path"]
    with Servers(credentials, [ENDPOINT], qps=first.qps, seed=1, accounts=extra) as servers:
        store = Store(location)
        made = Cluster(work, accounts, state, servers, credentials, store)
        try:
            yield made
        finally:
            for daemon in made.daemons.values():
                daemon.close()
            store.close()


@dataclass
class Budget:
    """One account's vendor calls per whole calendar second of a window."""

    account: str
    qps: int
    seconds: list[int]

    @classmethod
    def of(cls, c: Cluster, account: str, since: float, until: float) -> Budget:
        counts = {int(s): n for s, n in c.stats(account)["per_second"].items()}
        window = range(int(since) + 1, int(until))
        return cls(account, c.account(account).qps, [counts.get(s, 0) for s in window])

    @property
    def over(self) -> int:
        return sum(1 for n in self.seconds if n > self.qps)

    def cell(self) -> str:
        mean = statistics.mean(self.seconds) if self.seconds else 0.0
        return f"{mean:.1f} / {max(self.seconds, default=0)} ({self.over})"


def wait_for(what: str, done: Any, timeout: float, every: float = 0.05) -> float:
    """Poll ``done()`` (no event announces a lease or a vendor call) until true; when."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.time()


# --------------------------------------------------------------------------- a


@dataclass
class Isolation:
    """One run of scenario a: b's workload with a idle or saturated."""

    saturated: bool
    budgets: list[Budget]
    latencies: list[float]
    missing: int
    #: New since a's token was revoked, per account: token fetches, 10400 answers.
    tokens_after: dict[str, int]
    invalid_after: dict[str, int]
    #: b's list calls (its sweeps' pages) a minute over the run.
    b_lists_per_min: float

    def p(self, q: float) -> float:
        return quantile(self.latencies, q)


def two_accounts(work: Path, args: argparse.Namespace, saturated: bool, offset: float) -> Isolation:
    """b's workload created ``offset`` s after the daemon's readiness, so that its jobs meet
    the list sweeps (every ``min_interval`` from the start) at the same phase on both sides:
    a phase that differs moves b's p50 by a second on its own."""
    accounts = make_accounts(["a", "b"], args.qps)
    with cluster(work, accounts, {"path": str(work / "state.db")}) as c:
        c.start("node")
        ready = time.monotonic()
        if saturated:
            c.jobs("a", args.backlog, queue_s=5, run_s=86_400)
            wait_for("a saturated", lambda: c.stats("a")["max_per_second"] >= args.qps, 60)
        time.sleep(max(0.0, ready + offset - time.monotonic()))  # the phase, not an event
        rng = random.Random(args.seed)
        runs = sorted(rng.uniform(2.0, 30.0) for _ in range(args.jobs))
        began = time.time()
        start = c.stats("b")
        b_jobs = [c.jobs("b", 1, queue_s=1.0, run_s=run_s)[0] for run_s in runs]
        tracker = CallbackTracker(c.servers.receiver, ENDPOINT.path)
        tracker.wait_all(b_jobs[: len(b_jobs) // 2], WAIT_S)  # the earlier-finishing half
        before = {a.name: c.stats(a.name) for a in accounts}
        c.servers.sim.revoke_token(c.account("a").app_id)
        missing = tracker.wait_all(b_jobs, WAIT_S)
        until = time.time()
        after = {a.name: c.stats(a.name) for a in accounts}
        lists = after["b"]["by_path"].get(LIST_PATH, 0) - start["by_path"].get(LIST_PATH, 0)
        done = c.completed_at("b")
        return Isolation(
            saturated,
            [Budget.of(c, a.name, began, until) for a in accounts],
            [tracker.first[j].received_at - done[j] for j in b_jobs if j in tracker.first],
            len(missing),
            {n: after[n]["tokens_issued"] - before[n]["tokens_issued"] for n in after},
            {n: _code(after[n], 10400) - _code(before[n], 10400) for n in after},
            lists * 60 / (until - began),
        )


def _code(stats: dict[str, Any], code: int) -> int:
    return int(stats["codes"].get(str(code), 0))


# --------------------------------------------------------------------------- b

NODES = ("node-0", "node-1", "node-2")


@dataclass
class Failover:
    """Scenario b: the spread, the moves after a kill -9, what the receiver and vendor saw."""

    settle_s: float
    held: dict[str, list[str]]
    victim: str
    #: Seconds from the kill to another node holding each of the victim's accounts.
    moved_s: dict[str, float]
    bound_s: float
    jobs: int
    lost: int
    #: Jobs by how many distinct events (webhook ids) reached the receiver for them.
    events_per_job: dict[int, int]
    #: Accepted deliveries beyond one per event (at-least-once redeliveries).
    redelivered: int
    budgets: list[Budget]
    total: list[int]


def three_nodes(work: Path, url: str, args: argparse.Namespace) -> Failover:
    accounts = make_accounts([f"a{i}" for i in range(1, 7)], args.qps)
    with cluster(work, accounts, {"url": url, "lease": f"{args.lease:g}s"}) as c:
        started = time.time()
        for node in NODES:
            c.start(node)
        settled = wait_for(
            "two leases on each node",
            lambda: [len(c.held(n)) for n in NODES] == [2, 2, 2],
            WAIT_S,
            every=0.2,
        )
        held = {n: sorted(c.held(n)) for n in NODES}
        rng = random.Random(args.seed)
        finishing: list[str] = []
        for a in accounts:
            c.jobs(a.name, args.backlog, queue_s=5, run_s=86_400)
            runs = [rng.uniform(2.0, 40.0) for _ in range(args.jobs_b)]
            finishing += [c.jobs(a.name, 1, queue_s=1.0, run_s=r)[0] for r in runs]
        time.sleep(args.kill_after)  # a point in the jobs' finishing, not an event
        victim, survivors = NODES[-1], NODES[:-1]
        gone = c.held(victim)
        gone_at = time.time()
        c.daemons[victim].kill9()
        moved: dict[str, float] = {}

        def all_moved() -> bool:
            now = set().union(*(c.held(n) for n in survivors))
            at = time.time() - gone_at
            for account in gone & now:
                moved.setdefault(account, at)
            return gone <= set(moved)

        wait_for("the dead node's leases held elsewhere", all_moved, args.lease + 60, 0.02)
        tracker = CallbackTracker(c.servers.receiver, ENDPOINT.path)
        missing = tracker.wait_all(finishing, WAIT_S)
        until = time.time()
        per_job = [len(tracker.event_ids.get(j, set())) for j in finishing]
        events = sum(len(ids) for ids in tracker.event_ids.values())
        counts = {int(s): n for s, n in c.servers.sim.stats()["per_second"].items()}
        return Failover(
            settle_s=settled - started,
            held=held,
            victim=victim,
            moved_s=moved,
            bound_s=args.lease + STANDBY_EVERY,
            jobs=len(finishing),
            lost=len(missing),
            events_per_job={n: per_job.count(n) for n in sorted(set(per_job))},
            redelivered=len(c.servers.receiver.accepted(ENDPOINT.path)) - events,
            budgets=[Budget.of(c, a.name, started, until) for a in accounts],
            total=[counts.get(s, 0) for s in range(int(started) + 1, int(until))],
        )


# --------------------------------------------------------------------------- report


@dataclass
class Side:
    """One side of scenario a (b alone, or beside a saturated a): its runs, pooled."""

    runs: list[Isolation]

    @property
    def latencies(self) -> list[float]:
        return [s for run in self.runs for s in run.latencies]

    def p(self, q: float) -> float:
        return quantile(self.latencies, q)

    def budget(self, i: int) -> Budget:
        first = self.runs[0].budgets[i]
        seconds = [n for run in self.runs for n in run.budgets[i].seconds]
        return Budget(first.account, first.qps, seconds)

    def total(self, what: str) -> str:
        """New token fetches (``tokens_after``) or 10400 answers after the revocation, a / b."""
        return " / ".join(
            str(sum(getattr(run, what)[name] for run in self.runs)) for name in ("a", "b")
        )


def report_a(alone: Side, busy: Side, qps: int) -> list[tuple[str, bool | None]]:
    ratio = busy.p(0.95) / alone.p(0.95) if alone.latencies and busy.latencies else None
    sides = (alone, busy)

    def row(name: str, cell: Any, target: str = "") -> list[str]:
        return [name, *(cell(side) for side in sides), target]

    def p50_p95(side: Side) -> str:
        return f"{fmt(side.p(0.5), '{:.2f}')} / {fmt(side.p(0.95), '{:.2f}')}"

    rows = [
        row("a calls/s: mean / max (s over)", lambda s: s.budget(0).cell(), f"≤ {qps} each s"),
        row("b calls/s: mean / max (s over)", lambda s: s.budget(1).cell(), f"≤ {qps} each s"),
        row("b detection p50 / p95, s (pooled)", p50_p95),
        row("  ... p95 of each run, s", lambda s: " / ".join(f"{r.p(0.95):.2f}" for r in s.runs)),
        row(
            "b list calls a minute, each run",
            lambda s: " / ".join(f"{r.b_lists_per_min:.1f}" for r in s.runs),
        ),
        ["b detection p95 vs alone", "1.00x", fmt(ratio, "{:.2f}x"), f"≤ {RATIO_TARGET:.2f}x"],
        row("b jobs not notified", lambda s: f"{sum(r.missing for r in s.runs)}", "0"),
        row("a's token revoked: new a / b tokens", lambda s: s.total("tokens_after"), "b: 0"),
        row("  ... new 10400 answers a / b", lambda s: s.total("invalid_after"), "b: 0"),
    ]
    runs = len(alone.runs)
    print(f"\na. two accounts in one daemon (SQLite), {runs} run(s) a side, alternately")
    header = ["measure", "b alone (baseline)", "a saturated", "target"]
    print(table(header, rows, rule=True))
    every = [run for side in sides for run in side.runs]
    return [
        (
            "each account <= its qps in every second",
            all(b.over == 0 for run in every for b in run.budgets),
        ),
        (
            f"b's detection p95 beside a saturated <= {RATIO_TARGET:.2f}x alone",
            ratio is not None and ratio <= RATIO_TARGET,
        ),
        (
            "a's revoked token: no token fetch or 10400 on b",
            all(run.tokens_after["b"] == run.invalid_after["b"] == 0 for run in every),
        ),
        (
            "a's revoked token noticed: a fetched a new one (saturated runs)",
            all(run.tokens_after["a"] >= 1 for run in busy.runs),
        ),
        ("every b job notified", all(run.missing == 0 for run in every)),
    ]


def report_b(f: Failover, qps: int, lease: float) -> list[tuple[str, bool | None]]:
    moves = " · ".join(f"{a} {s:.2f} s" for a, s in sorted(f.moved_s.items()))
    spread = " · ".join(f"{n} {' '.join(held)}" for n, held in f.held.items())
    total = statistics.mean(f.total) if f.total else 0.0
    rows = [
        ["leases per node after settling", spread, "2 each"],
        ["  ... settled after, s", f"{f.settle_s:.1f}", "-"],
        [f"kill -9 {f.victim}: its leases held elsewhere", moves, f"≤ lease + 1 = {f.bound_s:g} s"],
        ["finished jobs notified", f"{f.jobs - f.lost} of {f.jobs}", "0 lost"],
        [
            "jobs by events received",
            ", ".join(f"{n}: {jobs}" for n, jobs in f.events_per_job.items()),
            "1 each",
        ],
        ["deliveries beyond one per event", str(f.redelivered), "-"],
        *(
            [f"{b.account} calls/s: mean / max (s over)", b.cell(), f"≤ {qps} (one account)"]
            for b in f.budgets
        ),
        ["all accounts' calls/s: mean / max", f"{total:.1f} / {max(f.total, default=0)}", "-"],
    ]
    print(f"\nb. three nodes, six accounts, one PostgreSQL (state.lease {lease:g} s)")
    print(table(["measure", "value", "target / baseline"], rows, rule=True))
    return [
        ("two leases on each node after settling", all(len(h) == 2 for h in f.held.values())),
        (
            f"the dead node's leases held elsewhere within {f.bound_s:g} s",
            len(f.moved_s) == 2 and max(f.moved_s.values()) <= f.bound_s,
        ),
        ("0 finished jobs lost", f.lost == 0),
        ("exactly one event per job", set(f.events_per_job) == {1}),
        ("no account over its qps in any second", all(b.over == 0 for b in f.budgets)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b"], help="one scenario")
    parser.add_argument("--qps", type=int, default=10, help="each account's budget")
    parser.add_argument("--jobs", type=int, default=40, help="a: b's finishing jobs")
    parser.add_argument("--repeat", type=int, default=2, help="a: runs of each side")
    parser.add_argument("--backlog", type=int, default=200, help="open jobs per busy account")
    parser.add_argument("--jobs-b", type=int, default=20, help="b: finishing jobs per account")
    parser.add_argument("--lease", type=float, default=10.0, help="b: state.lease, seconds")
    parser.add_argument("--kill-after", type=float, default=8.0, help="b: s after the jobs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep state files and logs")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args(argv)
    install_sigterm_exit()
    verdicts: list[tuple[str, bool | None]] = []
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with work_dir("bench-accounts-", args.keep) as work:
        if args.only in (None, "a"):
            alone, busy = Side([]), Side([])
            for i in range(args.repeat):
                offset = START_AFTER + i * SWEEP_EVERY / args.repeat  # phases spread out
                for side, saturated in ((alone, False), (busy, True)):
                    what = "beside a saturated" if saturated else "alone"
                    print(f"a: b {what}, run {i + 1} ...", flush=True)
                    run = work / f"a{i}-{'busy' if saturated else 'alone'}"
                    side.runs.append(two_accounts(run, args, saturated, offset))
            results["a"] = {"alone": asdict(alone), "saturated": asdict(busy)}
            verdicts += report_a(alone, busy, args.qps)
        if args.only in (None, "b"):
            print("b: three nodes, six accounts ...", flush=True)
            with PgServer.start() as pg:
                failover = three_nodes(work / "nodes", pg.database(), args)
            results["b"] = asdict(failover)
            verdicts += report_b(failover, args.qps, args.lease)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accounts.json").write_text(json.dumps(results, indent=2))
    print()
    for what, ok in verdicts:
        print(verdict(ok, what))
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
