"""Several nodes on one PostgreSQL: failover time, the vendor budget, delivery throughput.

All with the real daemon (``python -m notifier run``, through :mod:`bench.harness`), the
vendor simulator and a receiver on 127.0.0.1, and a PostgreSQL server: the one named by
``CHANJING_NOTIFIER_TEST_PG``, else a throwaway one from the machine's binaries
(``tests/pg_server.py``: fsync off, like SQLite's ``synchronous=NORMAL`` it does not wait for
the disk at each commit). Each number is compared with a baseline measured in the same run:

1. **Failover.** Two daemons (``state.lease`` 10 s, the default) polling a backlog of jobs
   that never finish; the lease holder is stopped at a random point of its renewal cycle,
   and the time until the *other* node's first vendor call reaches the simulator is taken
   (the sender of each call is known: :class:`~bench.harness.ArrivalLog`). The stopped node
   comes back as a new process (the next standby) for the next trial. ``kill -9``: bound
   ``state.lease`` + 1 s (the standby's next try); SIGTERM (the lease is released once the
   node's last calls ended): bound MARGIN (2 s) + 1 s.
2. **Budget.** Calls per second as the simulator counts them, with that backlog: one node
   (baseline) vs two nodes, in a steady window and over the whole two-node run (failovers
   included): mean, max, seconds over ``qps``. Target: 0 seconds over.
3. **Delivery throughput.** N terminal events with a pending delivery each, delivered by one
   daemon on a SQLite file (baseline) and on PostgreSQL: deliveries per second at the
   receiver (first to last). Target: PostgreSQL >= half of SQLite.

Prints tables and PASS/FAIL lines, writes ``bench/out/ha.json``. Run: ``python -m bench.ha``
(about 4 min; ``--lease 3`` is quicker; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    ArrivalLog,
    CallbackTracker,
    Credentials,
    Daemon,
    EndpointSpec,
    Intake,
    Servers,
    build_state,
    daemon_config,
    daemon_env,
    install_sigterm_exit,
    job_id,
    start_daemon,
    write_config,
)
from bench.report import table, verdict
from notifier.polling.lease import MARGIN, STANDBY_EVERY
from tests.kit import PgServer

QPS = 10
ENDPOINT = EndpointSpec("bench", "/hook")
#: Open jobs that never finish: far more than one second of budget covers.
BACKLOG = 300
WAIT_S = 120.0


@dataclass
class Cluster:
    """A bench setup of servers, one state and the daemons on it (started in turn)."""

    work: Path
    servers: Servers
    arrivals: ArrivalLog
    credentials: Credentials
    state: dict[str, Any]
    daemons: list[Daemon] = field(default_factory=list)

    def config_path(self) -> Path:
        path = self.work / "config.yaml"
        if not path.exists():
            config = daemon_config(
                state_path=self.work / "unused.db",
                sim_url=self.servers.sim_url,
                receiver_url=self.servers.receiver_url,
                endpoints=[ENDPOINT],
                qps=QPS,
                polling={"min_interval": "1s"},
                log_level="info",
                app_id=self.credentials.app_id,
            )
            config["state"] = self.state
            write_config(path, config)
        return path

    def start(self) -> Daemon:
        log = self.work / f"daemon-{len(self.daemons)}.log"
        daemon = start_daemon(self.config_path(), daemon_env(self.credentials), log)
        self.daemons.append(daemon)
        assert daemon.pid is not None
        self.arrivals.watch(daemon.pid)
        daemon.wait_ready()
        return daemon


@contextlib.contextmanager
def setup(work: Path, state: dict[str, Any]) -> Iterator[Cluster]:
    credentials = Credentials.generate()
    arrivals = ArrivalLog()
    work.mkdir(parents=True, exist_ok=True)
    with Servers(credentials, [ENDPOINT], qps=QPS, seed=1, arrivals=arrivals) as servers:
        node = Cluster(work, servers, arrivals, credentials, state)
        try:
            yield node
        finally:
            for daemon in node.daemons:
                daemon.close()


def backlog(node: Cluster, location: str) -> None:
    """Open jobs that never finish, queued for the daemons."""
    jobs = [node.servers.sim.add_job(queue_s=5, run_s=3600) for _ in range(BACKLOG)]
    intake = Intake(location)  # a URL opens PostgreSQL
    try:
        intake.watch(jobs)
    finally:
        intake.close()


def per_second(node: Cluster, since: float, until: float) -> list[int]:
    """Vendor calls in each whole calendar second of [since, until) (simulator's count)."""
    counts = {int(s): n for s, n in node.servers.sim.stats()["per_second"].items()}
    return [counts.get(s, 0) for s in range(int(since) + 1, int(until))]


def holder_of(node: Cluster, at: float) -> int | None:
    """The process whose vendor call arrived at ``at``."""
    return next(who for t, who in node.arrivals.arrivals if t == at)


def wait_calls(node: Cluster, pid: int | None, since: float, timeout: float = WAIT_S) -> float:
    """The first arrival of ``pid``'s (any node's) vendor calls at or after ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        times = node.arrivals.times(pid, since=since)
        if times:
            return times[0]
        time.sleep(0.01)  # a poll of the simulator's log; no event announces a call
    raise RuntimeError(f"no vendor call from pid {pid} within {timeout:.0f} s")


# --------------------------------------------------------------------------- 1 and 2


@dataclass
class Budget:
    name: str
    seconds: list[int]

    def row(self) -> list[str]:
        over = sum(1 for n in self.seconds if n > QPS)
        mean = statistics.mean(self.seconds) if self.seconds else 0.0
        top = max(self.seconds, default=0)
        return [self.name, str(len(self.seconds)), f"{mean:.1f}", str(top), str(over)]


def one_node(work: Path, url: str, window: float) -> Budget:
    with setup(work, {"url": url}) as node:
        node.start()
        backlog(node, url)
        began = wait_calls(node, None, 0.0)
        time.sleep(window)  # the measured window: calls made while it passes
        return Budget("1 node, backlog (baseline)", per_second(node, began, time.time()))


@dataclass
class Failover:
    """Seconds from the stop to the other node holding the lease (its log line), and to its
    first vendor call; ``bound`` is judged on ``judged`` ("taken" or "call")."""

    how: str
    bound: float
    judged: str
    taken: list[float] = field(default_factory=list)
    call: list[float] = field(default_factory=list)

    def ok(self) -> bool:
        times = self.call if self.judged == "call" else self.taken
        return bool(times) and max(times) <= self.bound

    def row(self) -> list[str]:
        def spread(times: list[float]) -> str:
            return f"{statistics.mean(times):.2f} / {max(times):.2f}"

        return [
            self.how,
            str(len(self.call)),
            spread(self.taken),
            spread(self.call),
            f"{self.bound:g} ({self.judged})",
            "PASS" if self.ok() else "FAIL",
        ]


ACQUIRED = "vendor lease acquired; this node calls the vendor"


def taken_at(daemon: Daemon) -> float:
    """When ``daemon`` logged that it took the lease (its first time)."""
    if not daemon.wait_for_log(lambda r: r.get("event") == ACQUIRED, WAIT_S):
        raise RuntimeError(f"the standby never took the lease:\n{daemon.log_tail()}")
    record = next(r for r in daemon.records() if r.get("event") == ACQUIRED)
    return datetime.fromisoformat(str(record["timestamp"])).timestamp()


def two_nodes(
    work: Path, url: str, lease: float, trials: int, window: float, rng: random.Random
) -> tuple[list[Failover], list[Budget]]:
    """``trials`` times kill -9 of the holder, then ``trials`` clean stops (SIGTERM: it
    releases the lease once its last calls ended); each time the next holder's first call."""
    failovers = [
        Failover("kill -9", lease + STANDBY_EVERY, "call"),
        Failover("SIGTERM", MARGIN + STANDBY_EVERY, "taken"),
    ]
    with setup(work, {"url": url, "lease": f"{lease:g}s"}) as node:
        pair = [node.start(), node.start()]
        backlog(node, url)
        began = wait_calls(node, None, 0.0)
        # The first started takes the lease, unless a renewal on a loaded machine was late.
        holder, standby = pair if holder_of(node, began) == pair[0].pid else pair[::-1]
        time.sleep(window)
        steady = per_second(node, began, time.time())
        for failover, sig in zip(failovers, (signal.SIGKILL, signal.SIGTERM), strict=True):
            for _ in range(trials):
                time.sleep(rng.uniform(0.5, 1.5))  # anywhere in the holder's renewal cycle
                assert holder.pid is not None and standby.pid is not None
                gone_at = time.time()
                os.kill(holder.pid, sig)
                failover.call.append(wait_calls(node, standby.pid, gone_at) - gone_at)
                failover.taken.append(taken_at(standby) - gone_at)
                holder.close()
                holder, standby = standby, node.start()  # the stopped node, back as a new one
        whole = per_second(node, began, time.time())
    return failovers, [
        Budget("2 nodes, backlog, steady", steady),
        Budget(f"2 nodes, backlog, {2 * trials} failovers", whole),
    ]


# --------------------------------------------------------------------------- 3


@dataclass
class Throughput:
    name: str
    rate: float | None
    missing: int


def deliver(work: Path, name: str, location: str, state: dict[str, Any], n: int) -> Throughput:
    """One daemon delivers ``n`` pending events from ``location``; deliveries/s at the
    receiver, first accepted callback to last."""
    build_state(location, n, [ENDPOINT.name])  # type: ignore[arg-type]  # a path or a URL
    with setup(work / name, state) as node:
        tracker = CallbackTracker(node.servers.receiver, ENDPOINT.path)
        node.start()
        missing = tracker.wait_all([job_id(i) for i in range(n)], WAIT_S)
        times = sorted(r.received_at for r in tracker.first.values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else None
    return Throughput(name, rate, len(missing))


# --------------------------------------------------------------------------- report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=10.0, help="state.lease, seconds")
    parser.add_argument("--trials", type=int, default=3, help="failovers of each kind")
    parser.add_argument("--window", type=float, default=10.0, help="budget window, seconds")
    parser.add_argument("--events", type=int, default=2000, help="deliveries per backend")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs per backend")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args(argv)
    install_sigterm_exit()
    rng = random.Random(args.seed)
    with PgServer.start() as pg, tempfile.TemporaryDirectory(prefix="bench-ha-") as tmp:
        work = Path(tmp)
        print("budget, 1 node ...", flush=True)
        single = one_node(work / "one", pg.database(), args.window)
        print("failover and budget, 2 nodes ...", flush=True)
        failovers, budgets = two_nodes(
            work / "two", pg.database(), args.lease, args.trials, args.window, rng
        )
        runs: list[Throughput] = []
        for i in range(args.repeat):
            print(f"delivery throughput, run {i + 1} ...", flush=True)
            db = work / f"sqlite-{i}.db"
            runs.append(deliver(work, f"sqlite-{i}", str(db), {"path": str(db)}, args.events))
            url = pg.database()
            runs.append(deliver(work, f"postgres-{i}", url, {"url": url}, args.events))

    print("\nfailover: the holder stopped -> the other node took the lease, made its first call")
    print(
        table(
            ["stop", "trials", "lease taken s (mean / max)", "first call s", "bound s", ""],
            [f.row() for f in failovers],
        )
    )
    print(f"\nvendor calls per calendar second (simulator's count, qps {QPS})")
    rows = [b.row() for b in (single, *budgets)]
    print(table(["run", "seconds", "mean/s", "max/s", "over qps"], rows))
    over = sum(int(r[4]) for r in rows)

    print(f"\ndelivery throughput, {args.events} events, one daemon")
    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for run in runs:
        if run.rate is not None and not run.missing:
            rates[run.name.split("-")[0]].append(run.rate)
    ratio = None
    if rates["sqlite"] and rates["postgres"]:
        ratio = statistics.median(rates["postgres"]) / statistics.median(rates["sqlite"])
    print(
        table(
            ["state", "deliveries/s per run", "missing"],
            [
                [
                    name + (" (baseline)" if name == "sqlite" else ""),
                    " / ".join(f"{r.rate:.0f}" for r in runs if r.name.startswith(name) and r.rate),
                    str(sum(r.missing for r in runs if r.name.startswith(name))),
                ]
                for name in ("sqlite", "postgres")
            ],
        )
    )
    verdicts = [
        *((f"{f.how}: {f.judged} within {f.bound:g} s", f.ok()) for f in failovers),
        ("0 seconds over qps", over == 0),
        ("PostgreSQL >= 0.5 x SQLite deliveries/s", ratio is not None and ratio >= 0.5),
    ]
    print(f"\nPostgreSQL / SQLite: {ratio:.2f}" if ratio is not None else "\nno throughput ratio")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "failovers": [asdict(f) for f in failovers],
        "budget": [asdict(b) for b in (single, *budgets)],
        "throughput": [asdict(r) for r in runs],
        "ratio": ratio,
    }
    (args.out / "ha.json").write_text(json.dumps(results, indent=2))
    for what, ok in verdicts:
        print(verdict(ok, what))
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
