"""Scale benchmark: many watches, a long history, an idle daemon.

Three measurements, each next to a baseline taken in the same run:

1. **Decision cost.** Two state files built with the Store API in a temp dir, one with no
   history and one on top of 1,000,000 finished watches (each with its event and a delivered
   delivery), both grown from 1k to 10k to 100k active watches. At each size poller-like
   ticks run on the real :class:`~notifier.store.Store`, the two files in alternating slices
   (a busy moment on the machine hits both alike), timing every store call: ``due_watches``
   + ``early_watches`` (k=10, the jobs in flight excluded), then for each picked job
   ``plan_after_poll`` + ``record_poll``; and the recurring reads that are not per decision
   (``active_watches_among`` of a 100-job list page, ``live_counts``,
   ``oldest_active_create_time``, ``due_deliveries``, and, timed a few times,
   ``expire_watches`` and the reads of a /metrics scrape). The store's clock is stepped one
   second of budget per tick, so polls come due again as in a running daemon: every size
   keeps a backlog (``rows due/early`` shows it). One *decision* is choosing and recording
   one poll: (due + early) / k + plan + record. Baseline: n = 1k; targets: the 100k/1k ratio
   of the decision cost is flat (<= 3x), and the history changes it by <= 1.5x. Periodic
   reads that grow are listed with what they cost at the daemon's cadence.
2. **Start to ready and RSS.** The real daemon (``python -m notifier -c CFG run``, through
   :mod:`bench.harness`) on the 100k-active state files (without and with the history),
   polling the in-process vendor simulator that holds the same 100k jobs (queued 0 s,
   running for 10 h, so they stay active), with the product's default polling settings
   (list sweep on). Measured: process start to ``READY=1`` (its sd_notify datagram), then,
   over a window of running, CPU (utime + stime from ``/proc/PID/stat``), VmRSS at its end
   and VmHWM (peak) from ``/proc/PID/status``, job observations recorded and vendor calls
   per second. Baseline: the same with 1k watches. Targets: ready <= 5 s, RSS <= 200 MB.
3. **Idle CPU.** The daemon with no watches and one webhook endpoint, on an empty state file
   and on the history file (finished rows only), and ``python -c "import time;
   time.sleep(…)"`` as the baseline, all measured over the same window after ready.
   Target: <= 1 % of one core.

Set-up, not measured: the first 20k finished rows go through ``Store.add_watches`` +
``Store.record_terminal`` (their rate is reported: the Store API would need about two minutes
for 1M); the rest are inserted with plain SQL into the same tables and columns
(``notifier/store/sql/sqlite``), in one connection.

Run ``python -m bench.scale`` (about 2.5 min; ``--quick`` for a ~1 min run with 200k
finished rows and shorter windows; ``--help`` for options). Prints tables and PASS/FAIL
lines, writes ``bench/out/scale.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    Credentials,
    Daemon,
    DaemonError,
    EndpointSpec,
    Servers,
    daemon_config,
    daemon_env,
    install_sigterm_exit,
    write_config,
)
from notifier.delivery.transition import build_event
from notifier.models import STATUS_GENERATING, STATUS_SUCCESS, JobDetail, JobMemory, WatchSpec
from notifier.polling.policy import PollingSettings, plan_after_poll
from notifier.store import Store, WatchRow

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
QPS = 10
#: Jobs the poller picks per tick: about one second of budget (notifier.polling.poller.LOOKAHEAD).
PICK = QPS
#: Ids per list page (the vendor's largest page_size): what one sweep page looks up.
PAGE = 100
#: Deliveries an endpoint lane asks for at once (delivery.concurrency default).
LANE = 8
ENDPOINT = "ops"
#: Product defaults (docs/config.md).
MIN_INTERVAL_S = 5.0
MAX_INTERVAL_S = 120.0
GIVE_UP_AFTER_S = 86_400.0
#: Finished rows written through the Store API before switching to plain SQL.
API_FINISHED_ROWS = 20_000
#: Finished watches whose delivery stays pending, so ``due_deliveries`` has work to find.
PENDING_DELIVERIES = 100
#: Simulator jobs run this long: they stay active for the whole benchmark.
SIM_RUN_S = 36_000.0

#: Targets from issue 4, part 4.
TARGET_RSS_MB = 200.0
TARGET_READY_S = 5.0
TARGET_FLAT_RATIO = 3.0
TARGET_HISTORY_RATIO = 1.5
TARGET_IDLE_CPU_PCT = 1.0

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    finished: int
    decision_budget_s: float
    min_reps: int
    window_s: float
    idle_window_s: float


FULL = Settings(
    sizes=(1_000, 10_000, 100_000),
    finished=1_000_000,
    decision_budget_s=3.0,
    min_reps=30,
    window_s=15.0,
    idle_window_s=20.0,
)
QUICK = Settings(
    sizes=(1_000, 10_000, 100_000),
    finished=200_000,
    decision_budget_s=1.0,
    min_reps=15,
    window_s=8.0,
    idle_window_s=10.0,
)


# --------------------------------------------------------------------------- /proc


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds, from ``/proc/PID/stat``."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in MB, from ``/proc/PID/status``."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0  # kB
    return out


@dataclass
class CpuWindow:
    """CPU used by a process between :meth:`start` and :meth:`stop`, as % of one core."""

    pid: int
    cpu0: float = 0.0
    wall0: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def start(self) -> CpuWindow:
        self.cpu0 = proc_cpu_seconds(self.pid)
        self.wall0 = time.monotonic()
        return self

    def stop(self) -> float:
        self.cpu_s = proc_cpu_seconds(self.pid) - self.cpu0
        self.wall_s = time.monotonic() - self.wall0
        return self.percent

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


# --------------------------------------------------------------------------- building state


def active_id(i: int) -> str:
    return f"job-{i:07d}"


def finished_id(i: int) -> str:
    return f"done-{i:07d}"


def running_detail(job_id: str, progress: int, create_time: int) -> JobDetail:
    return JobDetail(job_id, STATUS_GENERATING, progress, "", "", "", 0, create_time)


def polling_settings(active: int) -> PollingSettings:
    """The product defaults, with the round-robin cap the sweep would compute for ``active``."""
    fair = max(MIN_INTERVAL_S, active / QPS)
    return PollingSettings(MIN_INTERVAL_S, MAX_INTERVAL_S, GIVE_UP_AFTER_S, "adaptive", fair)


def add_active(store: Store, start: int, stop: int, rng: random.Random) -> float:
    """Watch ``job-start`` … ``job-(stop-1)`` and give each a polling history; seconds taken.

    ``Store.add_watches`` in one transaction, then one ``record_poll`` per watch with the
    policy's plan for a poll made 0-240 s ago (progress 1-90 %): the poll keys spread over
    the last few minutes and the next two, as in a daemon that has been running under a
    backlog (at 10 calls/s, 100k jobs are each looked at every few hours).
    """
    began = time.perf_counter()
    now = store.now()
    settings = polling_settings(stop)
    with store.transaction():
        store.add_watches([WatchSpec(active_id(i)) for i in range(start, stop)], "queue")
        for i in range(start, stop):
            polled_at = now - rng.uniform(0.0, 2 * MAX_INTERVAL_S)
            detail = running_detail(active_id(i), rng.randint(1, 90), int(polled_at) - 60)
            plan = plan_after_poll(JobMemory(added_at=now), detail, polled_at, settings)
            store.record_poll(detail, plan.earliest, plan.deadline, plan.memory)
    return time.perf_counter() - began


def _event_for(job_id: str, now: float) -> tuple[JobDetail, Any]:
    detail = JobDetail(
        job_id,
        STATUS_SUCCESS,
        100,
        "success",
        f"https://cdn.example.invalid/videos/{job_id}.mp4",
        f"https://cdn.example.invalid/videos/{job_id}.jpg",
        12_345,
        int(now) - 900,
    )
    return detail, build_event(detail, {"customer": "bench"}, now - 700, now - 710)


def add_finished_api(store: Store, start: int, stop: int, *, pending: bool = False) -> float:
    """Finished watches through the Store API: add, then ``record_terminal`` (event +
    delivery to ``ops``), then mark the delivery delivered unless ``pending``."""
    began = time.perf_counter()
    now = store.now()
    ids = [finished_id(i) for i in range(start, stop)]
    with store.transaction():
        store.add_watches([WatchSpec(job_id, {"customer": "bench"}) for job_id in ids], "queue")
        for job_id in ids:
            detail, event = _event_for(job_id, now)
            store.record_terminal(detail, event, [ENDPOINT])
        if not pending:  # every delivery of the store is due by then: mark ours delivered
            for due in store.due_deliveries(ENDPOINT, now + 3600, stop - start):
                store.delivery_succeeded(due.id, 200)
    return time.perf_counter() - began


def add_finished_sql(path: Path, start: int, stop: int, now: float, chunk: int = 100_000) -> float:
    """Set-up only: the same rows as :func:`add_finished_api`, inserted with plain SQL."""
    began = time.perf_counter()
    _, template = _event_for("@@ID@@", now)
    body_parts = template.body.split(b"@@ID@@")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        for lo in range(start, stop, chunk):
            hi = min(stop, lo + chunk)
            ids = [finished_id(i) for i in range(lo, hi)]
            eids = [f"evt_{i:016x}" for i in range(lo, hi)]
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO watches (job_id, source, labels, state, status, progress, msg,"
                " create_time, added_at, last_poll_at, polls, finished_at)"
                " VALUES (?, 'queue', '{\"customer\": \"bench\"}', 'succeeded', 20, 100,"
                " 'success', ?, ?, ?, 3, ?)",
                ((job_id, int(now) - 900, now - 800, now - 700, now - 700) for job_id in ids),
            )
            db.executemany(
                "INSERT INTO events (event_id, job_id, type, created_at, body,"
                " last_seen_running_at) VALUES (?, ?, 'lip_sync.succeeded', ?, ?, ?)",
                (
                    (eid, job_id, now - 700, job_id.encode().join(body_parts), now - 710)
                    for eid, job_id in zip(eids, ids, strict=True)
                ),
            )
            db.executemany(
                "INSERT INTO deliveries (event_id, endpoint, state, attempts, created_at,"
                " last_attempt_at, last_status, delivered_at)"
                " VALUES (?, ?, 'delivered', 1, ?, ?, 200, ?)",
                ((eid, ENDPOINT, now - 700, now - 699, now - 699) for eid in eids),
            )
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return time.perf_counter() - began


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file (so the file can be copied)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table and active watches (read-only, for the report)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {
            table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("watches", "events", "deliveries")
        }
        out["active"] = int(
            db.execute("SELECT COUNT(*) FROM watches WHERE state = 'active'").fetchone()[0]
        )
        return out
    finally:
        db.close()


def total_polls(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        value = db.execute("SELECT SUM(polls) FROM watches WHERE state = 'active'").fetchone()[0]
        return int(value or 0)
    finally:
        db.close()


# --------------------------------------------------------------------------- decision cost

#: Operations of every poll decision: the poll tick (5 per second) picks up to k due jobs, or
#: early ones with spare budget; each answer is planned and recorded.
DECISION_OPS = ("due_watches", "early_watches", "plan+record_poll")
#: Recurring reads that are not per decision: per list page (active_watches_among), per
#: sweep / status tick, every few seconds (live_counts, oldest_active_create_time), per
#: dispatcher fill (due_deliveries), per housekeeping tick (expire_watches, every 30 s) and
#: per /metrics scrape when metrics are on (metrics_snapshot).
PERIODIC_OPS = (
    "active_watches_among",
    "live_counts",
    "oldest_active_create_time",
    "due_deliveries",
    "expire_watches",
    "metrics_snapshot",
)
#: Timed this many times after the ticks rather than in every tick (they are rare).
RARE_OPS = ("expire_watches", "metrics_snapshot")
RARE_REPS = 5
#: The two state files are measured in this many alternating slices of the time budget.
ROUNDS = 6
#: Periodic reads are noted when they grow and take at least this long (µs) per call.
NOTE_MIN_US = 1000.0
OPS = DECISION_OPS + PERIODIC_OPS


#: How often the daemon runs each operation (per second) with the product defaults and a
#: backlog: the poll tick every 0.2 s (early_watches only when too few are due, so this is
#: an upper bound), an answer per vendor call, up to 25 list pages per 5 s sweep, the sweep
#: and status ticks every 5 s, the dispatcher tick every second (more while delivering).
CALLS_PER_S = {
    "due_watches": 5.0,
    "early_watches": 5.0,
    "plan+record_poll": float(QPS),
    "active_watches_among": QPS * MIN_INTERVAL_S * 0.5 / MIN_INTERVAL_S,
    "live_counts": 2 / MIN_INTERVAL_S,
    "oldest_active_create_time": 1 / MIN_INTERVAL_S,
    "due_deliveries": 1.0,
    "expire_watches": 1 / 30,  # housekeeping tick
    "metrics_snapshot": 1 / 15,  # only with metrics.listen set: one scrape every 15 s
}


#: The store's clock starts this long ago, so that however far the ticks move it on, the
#: state files stay in the past for the daemon runs: every watch overdue, as in a daemon
#: that has had 100k jobs to look at with 10 calls a second for a while.
CLOCK_START_AGO_S = 6 * 3600.0


class StepClock:
    """The store's clock for the benchmark: starts :data:`CLOCK_START_AGO_S` ago, then moves
    only when told. Ticks advance it by one second of budget (k jobs at ``QPS``), so polls
    come due again as they would in a daemon running for that long, at any tick rate."""

    def __init__(self) -> None:
        self.at = time.time() - CLOCK_START_AGO_S

    def __call__(self) -> float:
        return self.at


@dataclass
class DecisionResult:
    history: str
    active: int
    finished: int
    reps: int
    #: Jobs picked per tick (due + early), on average: k when there is a backlog.
    picked_per_tick: float
    #: Median microseconds per call, per operation.
    median_us: dict[str, float]
    p90_us: dict[str, float]
    #: Rows returned per call (mean), for the operations that return rows.
    rows_per_call: dict[str, float] = field(default_factory=dict)

    @property
    def load_pct(self) -> float:
        """Share of one core these store calls take at the daemon's cadence (estimate)."""
        return sum(self.median_us[op] * CALLS_PER_S[op] for op in OPS) / 1e4

    @property
    def decision_us(self) -> float:
        """Choosing and recording one poll: a tick's two picks shared by its k jobs, plus
        the plan and the write of one answer."""
        m = self.median_us
        return (m["due_watches"] + m["early_watches"]) / PICK + m["plan+record_poll"]


def metrics_snapshot(store: Store) -> None:
    """What the daemon reads for each /metrics scrape (``Daemon._snapshot``)."""
    store.watch_counts()
    store.delivery_counts_by_endpoint()


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Ticker:
    """Poller-like ticks against one state file, timing each store call (perf_counter_ns).

    Each tick: pick due jobs (the previous tick's, still "in flight", excluded), top up with
    early ones, answer every picked job as still generating (+1 %) through the policy and
    ``record_poll`` (so, as in the daemon, the picks move on), then the sweep's and the
    dispatcher's reads; then the store's clock moves on by k / qps seconds. Samples add up
    over calls to :meth:`run`, so two files can be measured in alternation.
    """

    def __init__(self, state: StateFile, active: int, seed: int) -> None:
        self.state = state
        self.active = active
        self.settings = polling_settings(active)
        self.rng = random.Random(seed)
        self.ids = [active_id(i) for i in range(active)]
        self.samples: dict[str, list[float]] = {op: [] for op in OPS}
        self.rows: dict[str, int] = {}
        self.in_flight: frozenset[str] = frozenset()
        self.ticks = 0
        self.picked = 0

    def _timed(self, op: str, call: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter_ns()
        result = call(*args)
        self.samples[op].append((time.perf_counter_ns() - t0) / 1000.0)
        if isinstance(result, list):
            self.rows[op] = self.rows.get(op, 0) + len(result)
        return result

    def _answer(self, watch: WatchRow, detail: JobDetail, now: float) -> None:
        plan = plan_after_poll(watch.memory(), detail, now, self.settings)
        self.state.store.record_poll(detail, plan.earliest, plan.deadline, plan.memory)

    def run(self, seconds: float, min_ticks: int) -> None:
        store, clock, timed = self.state.store, self.state.clock, self._timed
        deadline = time.monotonic() + seconds
        ticks = 0
        while ticks < min_ticks or time.monotonic() < deadline:
            ticks += 1
            clock.at += PICK / QPS
            now = clock.at
            chosen = timed("due_watches", store.due_watches, now, PICK, self.in_flight)
            busy = self.in_flight | {w.job_id for w in chosen}
            early = timed("early_watches", store.early_watches, now, PICK, busy)
            chosen = chosen + early[: max(0, PICK - len(chosen))]
            self.picked += len(chosen)
            for watch in chosen:
                progress = min(99, (watch.progress or 0) + 1)
                detail = running_detail(watch.job_id, progress, watch.create_time or 0)
                timed("plan+record_poll", self._answer, watch, detail, now)
            self.in_flight = frozenset(w.job_id for w in chosen)
            page = self.rng.sample(self.ids, min(PAGE, len(self.ids)))
            timed("active_watches_among", store.active_watches_among, page)
            timed("live_counts", store.live_counts)
            timed("oldest_active_create_time", store.oldest_active_create_time)
            timed("due_deliveries", store.due_deliveries, ENDPOINT, now, LANE)
        self.ticks += ticks

    def run_rare(self) -> None:
        self._timed("expire_watches", self.state.store.expirable_watches, GIVE_UP_AFTER_S)
        self._timed("metrics_snapshot", metrics_snapshot, self.state.store)

    def result(self) -> DecisionResult:
        return DecisionResult(
            history=self.state.history,
            active=self.active,
            finished=self.state.finished,
            reps=self.ticks,
            picked_per_tick=self.picked / max(self.ticks, 1),
            median_us={op: statistics.median(v) for op, v in self.samples.items() if v},
            p90_us={op: _quantile(v, 0.9) for op, v in self.samples.items() if v},
            rows_per_call={op: n / len(self.samples[op]) for op, n in self.rows.items()},
        )


@dataclass
class StateFile:
    """One state file being grown and measured, and how it was built (set-up cost)."""

    history: str
    path: Path
    store: Store
    clock: StepClock
    finished: int = 0
    finished_api_rows: int = 0
    finished_api_s: float = 0.0
    finished_sql_rows: int = 0
    finished_sql_s: float = 0.0
    active_build_s: dict[int, float] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        keys = (
            "history",
            "finished",
            "finished_api_rows",
            "finished_api_s",
            "finished_sql_rows",
            "finished_sql_s",
            "active_build_s",
        )
        return {k: getattr(self, k) for k in keys}


def open_state(work: Path, finished: int, idle_copy: Path | None) -> StateFile:
    """A state file with ``finished`` rows of history (plus a few pending deliveries).

    With ``idle_copy``, a copy with the history only (no active watch, nothing pending) is
    left there for the idle run.
    """
    history = "empty" if finished == 0 else f"{finished:,} finished"
    path = work / ("empty.db" if finished == 0 else "history.db")
    clock = StepClock()
    state = StateFile(history, path, Store(path, clock=clock), clock, finished)
    store = state.store
    if finished > 0:
        api_rows = min(finished, API_FINISHED_ROWS)
        lo = PENDING_DELIVERIES
        state.finished_api_rows = api_rows
        state.finished_api_s = add_finished_api(store, lo, lo + api_rows)
        state.finished_sql_rows = finished - api_rows
        state.finished_sql_s = add_finished_sql(path, lo + api_rows, lo + finished, clock.at)
        rate = api_rows / max(state.finished_api_s, 1e-9)
        print(
            f"  history: {api_rows:,} finished rows via Store API in "
            f"{state.finished_api_s:.1f} s ({rate:,.0f}/s: {finished / rate:.0f} s for all); "
            f"{state.finished_sql_rows:,} via plain SQL (set-up) in "
            f"{state.finished_sql_s:.1f} s",
            flush=True,
        )
        if idle_copy is not None:
            checkpoint(path)
            shutil.copyfile(path, idle_copy)
    # Finished watches whose delivery is still pending, so due_deliveries finds work
    # (ids done-0000000…: below the history's).
    add_finished_api(store, 0, PENDING_DELIVERIES, pending=True)
    return state


def run_decisions(
    work: Path, s: Settings, seed: int, idle_copy: Path | None, measure: bool = True
) -> tuple[list[StateFile], list[DecisionResult]]:
    """Build the empty and the history state files, grow both through ``s.sizes`` and, at
    each size, measure them in alternation (so a busy moment hits both alike)."""
    states = [open_state(work, 0, None)]
    if s.finished > 0:
        states.append(open_state(work, s.finished, idle_copy))
    results: list[DecisionResult] = []
    try:
        have = 0
        for n in s.sizes:
            for state in states:
                rng = random.Random(seed + n)
                state.active_build_s[n] = add_active(state.store, have, n, rng)
            have = n
            built = ", ".join(f"{st.history} +{st.active_build_s[n]:.1f} s" for st in states)
            print(
                f"  {n:,} active watches (built: {built})"
                + ("; timing ticks …" if measure else ""),
                flush=True,
            )
            if not measure:
                continue
            tickers = [Ticker(state, n, seed + n) for state in states]
            for _ in range(ROUNDS):
                for ticker in tickers:
                    ticker.run(s.decision_budget_s / ROUNDS, max(1, s.min_reps // ROUNDS))
            for _ in range(RARE_REPS):
                for ticker in tickers:
                    ticker.run_rare()
            results.extend(ticker.result() for ticker in tickers)
    finally:
        for state in states:
            state.store.close()
    return states, results


# --------------------------------------------------------------------------- the daemon


@dataclass
class DaemonRun:
    label: str
    active: int
    finished: int
    start_to_ready_s: float | None = None
    ready_watching: int | None = None
    rss_ready_mb: float | None = None
    rss_end_mb: float | None = None
    hwm_mb: float | None = None
    cpu_pct: float | None = None
    polls_per_s: float | None = None
    vendor_calls_per_s: float | None = None
    stop_s: float | None = None
    exit_code: int | None = None
    #: Log records at warning or above (and non-JSON lines) while running, and while stopping.
    problems: int = 0
    problems_at_stop: int = 0
    error: str | None = None


def _ready_record(daemon: Daemon, timeout: float) -> dict[str, Any] | None:
    daemon.wait_for_log(lambda r: r.get("event") == "ready", timeout)
    return next((r for r in daemon.records if r.get("event") == "ready"), None)


def run_daemon(
    label: str,
    state_path: Path,
    servers: Servers,
    credentials: Credentials,
    active: int,
    finished: int,
    window_s: float,
    work: Path,
) -> DaemonRun:
    """Start the daemon on ``state_path``, time start → READY=1, let it run ``window_s``
    (CPU over the window, VmRSS at its end, VmHWM), stop it (SIGTERM; killed if need be)."""
    result = DaemonRun(label, active, finished)
    slug = label.replace(" ", "_").replace(",", "").replace("+", "_")
    config_path = work / f"{slug}.yaml"
    write_config(
        config_path,
        daemon_config(
            state_path=state_path,
            sim_url=servers.sim_url,
            receiver_url=servers.receiver_url,
            endpoints=[EndpointSpec(ENDPOINT, "/hook")],
            qps=QPS,
            log_level="info",
            app_id=credentials.app_id,
        ),
    )
    daemon = Daemon(config_path, daemon_env(credentials), work / f"{slug}.log")
    polls0 = total_polls(state_path)
    calls0 = int(servers.sim.stats()["calls"])
    try:
        daemon.start()
        result.start_to_ready_s = daemon.wait_ready(timeout=120)
        ready_mono = time.monotonic()
        assert daemon.pid is not None
        pid = daemon.pid
        window = CpuWindow(pid).start()
        result.rss_ready_mb = proc_memory_mb(pid).get("VmRSS")
        record = _ready_record(daemon, 10)
        if record is not None and isinstance(record.get("watching"), int):
            result.ready_watching = record["watching"]
        time.sleep(window_s)  # the measured window itself: nothing to wait for
        result.cpu_pct = window.stop()
        memory = proc_memory_mb(pid)
        result.rss_end_mb = memory.get("VmRSS")
        result.hwm_mb = memory.get("VmHWM")
        result.problems = len(daemon.problems())
        result.polls_per_s = (total_polls(state_path) - polls0) / window.wall_s
        calls = int(servers.sim.stats()["calls"]) - calls0
        result.vendor_calls_per_s = calls / (time.monotonic() - ready_mono)
        stopping = time.monotonic()
        result.exit_code = daemon.stop()
        result.stop_s = time.monotonic() - stopping
        result.problems_at_stop = len(daemon.problems()) - result.problems
    except (DaemonError, OSError) as exc:
        result.error = str(exc).splitlines()[0]
        print(f"  {label}: {exc}", flush=True)
    finally:
        daemon.close()
    return result


def simulator_with_jobs(credentials: Credentials, jobs: int) -> Servers:
    servers = Servers(credentials, [EndpointSpec(ENDPOINT, "/hook")], qps=QPS, seed=1)
    for i in range(jobs):
        servers.sim.add_job(active_id(i), queue_s=0.0, run_s=SIM_RUN_S)
    return servers  # started by its ``with``


# --------------------------------------------------------------------------- idle


@dataclass
class IdleResult:
    label: str
    cpu_pct: float
    cpu_s: float
    window_s: float
    rss_mb: float | None = None
    start_to_ready_s: float | None = None


@contextlib.contextmanager
def sleeper(seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep({seconds!r})"],
        stdin=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def run_idle(
    work: Path, history_file: Path | None, history_rows: int, window_s: float
) -> list[IdleResult]:
    """Idle daemons (empty state; ``history_file`` with finished rows only) and a sleeping
    Python process, measured over the same window after both daemons are ready."""
    credentials = Credentials.generate()
    results: list[IdleResult] = []
    daemons: list[tuple[str, Daemon]] = []
    with Servers(credentials, [EndpointSpec(ENDPOINT, "/hook")], qps=QPS) as servers:
        states = [("daemon, empty state", work / "idle-empty.db")]
        if history_file is not None:
            states.append((f"daemon, {history_rows:,} finished, 0 active", history_file))
        try:
            for label, state_path in states:
                slug = state_path.stem
                config_path = work / f"{slug}.yaml"
                write_config(
                    config_path,
                    daemon_config(
                        state_path=state_path,
                        sim_url=servers.sim_url,
                        receiver_url=servers.receiver_url,
                        endpoints=[EndpointSpec(ENDPOINT, "/hook")],
                        qps=QPS,
                        log_level="info",
                        app_id=credentials.app_id,
                    ),
                )
                daemon = Daemon(config_path, daemon_env(credentials), work / f"{slug}.log")
                daemons.append((label, daemon))
                daemon.start()
            ready = {label: d.wait_ready(timeout=120) for label, d in daemons}
            with sleeper(window_s + 30) as sleeping:
                time.sleep(1.0)  # let the sleeper finish importing: its idle is the baseline
                windows: list[tuple[str, CpuWindow]] = [
                    (label, CpuWindow(pid).start())
                    for label, d in daemons
                    if (pid := d.pid) is not None
                ]
                windows.append(("baseline: python time.sleep()", CpuWindow(sleeping.pid).start()))
                time.sleep(window_s)  # the measured window
                for label, window in windows:
                    window.stop()
                    rss = proc_memory_mb(window.pid).get("VmRSS")
                    results.append(
                        IdleResult(
                            label,
                            window.percent,
                            window.cpu_s,
                            window.wall_s,
                            rss,
                            ready.get(label),
                        )
                    )
        finally:
            for _, daemon in daemons:
                daemon.close()
    return results


# --------------------------------------------------------------------------- report


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def decision_table(results: Sequence[DecisionResult]) -> str:
    headers = ["history", "active", "ticks", "rows due/early", *DECISION_OPS, "decision"]
    headers += ["|", *PERIODIC_OPS, "|", "est. CPU %"]
    rows = []
    for r in results:
        rows.append(
            [
                r.history,
                f"{r.active:,}",
                str(r.reps),
                f"{r.rows_per_call.get('due_watches', 0):.1f}/"
                f"{r.rows_per_call.get('early_watches', 0):.1f}",
                *(f"{r.median_us[op]:.0f}" for op in DECISION_OPS),
                f"{r.decision_us:.0f}",
                "|",
                *(f"{r.median_us[op]:.0f}" for op in PERIODIC_OPS),
                "|",
                f"{r.load_pct:.2f}",
            ]
        )
    return table(headers, rows)


def ratios(results: Sequence[DecisionResult], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Per history: each op's (and the decision's) median at the largest size / smallest."""
    out = []
    for history in dict.fromkeys(r.history for r in results):
        by_n = {r.active: r for r in results if r.history == history}
        lo, hi = by_n.get(sizes[0]), by_n.get(sizes[-1])
        if lo is None or hi is None:
            continue
        entry: dict[str, Any] = {"history": history, "from": lo.active, "to": hi.active}
        for op in OPS:
            entry[op] = hi.median_us[op] / max(lo.median_us[op], 1e-9)
        entry["decision"] = hi.decision_us / max(lo.decision_us, 1e-9)
        out.append(entry)
    return out


def ratio_table(entries: Sequence[dict[str, Any]]) -> str:
    headers = ["history", "ratio", *DECISION_OPS, "decision", "|", *PERIODIC_OPS]
    rows = [
        [
            e["history"],
            f"{e['to'] // 1000}k/{e['from'] // 1000}k",
            *(f"{e[op]:.1f}x" for op in DECISION_OPS),
            f"{e['decision']:.1f}x",
            "|",
            *(f"{e[op]:.1f}x" for op in PERIODIC_OPS),
        ]
        for e in entries
    ]
    return table(headers, rows)


def periodic_notes(
    entries: Sequence[dict[str, Any]], results: Sequence[DecisionResult]
) -> list[str]:
    """One line per periodic read that grows more than the flat target: what it costs."""
    lines = []
    for e in entries:
        top = next(r for r in results if r.history == e["history"] and r.active == e["to"])
        for op in PERIODIC_OPS:
            us = top.median_us[op]
            if e[op] > TARGET_FLAT_RATIO and us >= NOTE_MIN_US:
                lines.append(
                    f"note ({e['history']}): {op} grows {e[op]:.0f}x: {us / 1000:.1f} ms at "
                    f"{e['to']:,}; run {CALLS_PER_S[op]:.2g}/s by the daemon, "
                    f"≈{us * CALLS_PER_S[op] / 1e4:.2f} % of a core"
                )
    return lines


def history_effect(results: Sequence[DecisionResult]) -> list[dict[str, Any]]:
    """Per size: decision cost with the finished rows / without."""
    empty = {r.active: r for r in results if r.finished == 0}
    out = []
    for r in results:
        base = empty.get(r.active)
        if r.finished == 0 or base is None:
            continue
        entry: dict[str, Any] = {"active": r.active, "finished": r.finished}
        for op in OPS:
            entry[op] = r.median_us[op] / max(base.median_us[op], 1e-9)
        entry["decision"] = r.decision_us / max(base.decision_us, 1e-9)
        out.append(entry)
    return out


def history_notes(
    entries: Sequence[dict[str, Any]], results: Sequence[DecisionResult]
) -> list[str]:
    """One line per periodic read that the history slows down by more than the target."""
    lines = []
    for e in entries:
        top = next(r for r in results if r.finished == e["finished"] and r.active == e["active"])
        for op in PERIODIC_OPS:
            us = top.median_us[op]
            if e[op] > TARGET_HISTORY_RATIO and us >= NOTE_MIN_US:
                lines.append(
                    f"note ({e['active']:,} active): {op} is {e[op]:.1f}x slower with "
                    f"{e['finished']:,} finished rows: {us / 1000:.1f} ms; run "
                    f"{CALLS_PER_S[op]:.2g}/s, ≈{us * CALLS_PER_S[op] / 1e4:.2f} % of a core"
                )
    return lines


def history_table(entries: Sequence[dict[str, Any]]) -> str:
    headers = ["active", "finished/empty", *DECISION_OPS, "decision", "|", *PERIODIC_OPS]
    rows = [
        [
            f"{e['active']:,}",
            f"{e['finished']:,}",
            *(f"{e[op]:.2f}x" for op in DECISION_OPS),
            f"{e['decision']:.2f}x",
            "|",
            *(f"{e[op]:.2f}x" for op in PERIODIC_OPS),
        ]
        for e in entries
    ]
    return table(headers, rows)


def daemon_table(runs: Sequence[DaemonRun]) -> str:
    headers = [
        "run",
        "ready s",
        "watching",
        "RSS@ready MB",
        "RSS@end MB",
        "HWM MB",
        "CPU %",
        "observed/s",
        "vendor calls/s",
        "stop s",
        "exit",
        "warn+ (stop)",
    ]
    rows = [
        [
            r.label,
            _f(r.start_to_ready_s, "{:.2f}"),
            _f(r.ready_watching, "{:,}"),
            _f(r.rss_ready_mb),
            _f(r.rss_end_mb),
            _f(r.hwm_mb),
            _f(r.cpu_pct),
            _f(r.polls_per_s),
            _f(r.vendor_calls_per_s),
            _f(r.stop_s, "{:.2f}"),
            _f(r.exit_code, "{}"),
            f"{r.problems} ({r.problems_at_stop})" if r.error is None else "ERROR",
        ]
        for r in runs
    ]
    return table(headers, rows)


def idle_table(results: Sequence[IdleResult]) -> str:
    headers = ["process", "window s", "CPU s", "CPU %", "RSS MB", "ready s"]
    rows = [
        [
            r.label,
            f"{r.window_s:.1f}",
            f"{r.cpu_s:.2f}",
            f"{r.cpu_pct:.2f}",
            _f(r.rss_mb),
            _f(r.start_to_ready_s, "{:.2f}"),
        ]
        for r in results
    ]
    return table(headers, rows)


def verdicts(
    ratio_entries: Sequence[dict[str, Any]],
    history_entries: Sequence[dict[str, Any]],
    runs: Sequence[DaemonRun],
    idle: Sequence[IdleResult],
) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    for e in ratio_entries:
        slow = [op for op in DECISION_OPS if e[op] > TARGET_FLAT_RATIO]
        detail = f"decision {e['decision']:.1f}x" + (
            "; per call: " + ", ".join(f"{op} {e[op]:.1f}x" for op in slow) if slow else ""
        )
        out.append(
            (
                f"decision cost flat {e['from']:,}→{e['to']:,} ({e['history']}), "
                f"<= {TARGET_FLAT_RATIO:g}x",
                e["decision"] <= TARGET_FLAT_RATIO,
                detail,
            )
        )
    if history_entries:
        worst = max(history_entries, key=lambda e: e["decision"])
        out.append(
            (
                f"finished rows do not slow the tick (decision <= {TARGET_HISTORY_RATIO:g}x)",
                all(e["decision"] <= TARGET_HISTORY_RATIO for e in history_entries),
                f"worst {worst['decision']:.2f}x at {worst['active']:,} active",
            )
        )
    for r in runs:
        if r.active < 100_000:
            continue
        if r.error is not None:
            out.append((f"{r.label}: daemon ran", False, r.error))
            continue
        ready = r.start_to_ready_s or 0.0
        out.append(
            (f"{r.label}: start to ready <= {TARGET_READY_S:g} s", ready <= TARGET_READY_S, "")
        )
        peak = r.hwm_mb or 0.0
        out.append((f"{r.label}: RSS (VmHWM) <= {TARGET_RSS_MB:g} MB", peak <= TARGET_RSS_MB, ""))
    for i in idle:
        if i.label.startswith("daemon"):
            out.append(
                (
                    f"idle {i.label}: CPU <= {TARGET_IDLE_CPU_PCT:g} %",
                    i.cpu_pct <= TARGET_IDLE_CPU_PCT,
                    f"{i.cpu_pct:.2f} %",
                )
            )
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="smaller history, shorter windows")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--finished", type=int, help="finished rows in the history file")
    parser.add_argument("--window", type=float, help="seconds each daemon runs after ready")
    parser.add_argument("--idle-window", type=float, help="seconds of idle CPU measurement")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["decisions", "daemon", "idle"],
        help="leave a part out (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (state, logs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    install_sigterm_exit()
    args = parse_args(argv)
    s = QUICK if args.quick else FULL
    s = Settings(
        sizes=s.sizes,
        finished=s.finished if args.finished is None else args.finished,
        decision_budget_s=s.decision_budget_s,
        min_reps=s.min_reps,
        window_s=s.window_s if args.window is None else args.window,
        idle_window_s=s.idle_window_s if args.idle_window is None else args.idle_window,
    )
    work = Path(tempfile.mkdtemp(prefix="cjn-scale-"))
    try:
        return _main(args, s, work)
    finally:
        if args.keep:
            print(f"state files and daemon logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _main(args: argparse.Namespace, s: Settings, work: Path) -> int:
    started = time.monotonic()
    print(
        f"scale benchmark: sizes {', '.join(f'{n:,}' for n in s.sizes)}; history "
        f"{s.finished:,} finished rows; {os.cpu_count()} CPUs; SQLite {sqlite3.sqlite_version}",
        flush=True,
    )
    builds: list[StateFile] = []
    decisions: list[DecisionResult] = []
    history_idle = work / "idle-history.db"
    have_history_idle = False
    if "decisions" not in args.skip or "daemon" not in args.skip or "idle" not in args.skip:
        print("\n[1/4] building state files and timing the poller's store calls", flush=True)
        builds, decisions = run_decisions(
            work, s, args.seed, history_idle, measure="decisions" not in args.skip
        )
        have_history_idle = s.finished > 0
    ratio_entries = ratios(decisions, s.sizes)
    history_entries = history_effect(decisions)
    if decisions and "decisions" not in args.skip:
        print("\nmedian µs per call (one tick: pick k=10 due + early, record each answer;")
        print("decision = (due_watches + early_watches)/10 + plan+record_poll; est. CPU % =")
        print("these calls at the daemon's cadence: 5 ticks/s, 10 answers/s, 5 list pages/s, …):")
        print(decision_table(decisions))
        print(f"\ngrowth, baseline n={s.sizes[0]:,} (target: flat, <= {TARGET_FLAT_RATIO:g}x):")
        print(ratio_table(ratio_entries))
        for line in periodic_notes(ratio_entries, decisions):
            print(line)
        print(f"\nwith the history / without (target <= {TARGET_HISTORY_RATIO:g}x):")
        print(history_table(history_entries))
        for line in history_notes(history_entries, decisions):
            print(line)

    runs: list[DaemonRun] = []
    if "daemon" not in args.skip:
        print("\n[2/4] the daemon: start to ready, RSS, CPU (baseline: 1k watches)", flush=True)
        credentials = Credentials.generate()
        small = work / "small.db"
        store = Store(small, clock=StepClock())
        try:
            add_active(store, 0, s.sizes[0], random.Random(args.seed))
        finally:
            store.close()
        with simulator_with_jobs(credentials, s.sizes[0]) as servers:
            runs.append(
                run_daemon(
                    f"{s.sizes[0] // 1000}k active",
                    small,
                    servers,
                    credentials,
                    s.sizes[0],
                    0,
                    s.window_s,
                    work,
                )
            )
        big = s.sizes[-1]
        with simulator_with_jobs(credentials, big) as servers:
            for build in builds:
                label = f"{big // 1000}k active" + (
                    f" + {build.finished // 1000}k finished" if build.finished else ""
                )
                print(f"  {label} …", flush=True)
                runs.append(
                    run_daemon(
                        label,
                        build.path,
                        servers,
                        credentials,
                        big,
                        build.finished,
                        s.window_s,
                        work,
                    )
                )
        print(daemon_table(runs))

    idle: list[IdleResult] = []
    if "idle" not in args.skip:
        print(f"\n[3/4] idle CPU over {s.idle_window_s:g} s after ready", flush=True)
        idle = run_idle(
            work, history_idle if have_history_idle else None, s.finished, s.idle_window_s
        )
        print(idle_table(idle))

    print("\n[4/4] targets (issue 4, part 4)")
    checks = verdicts(ratio_entries, history_entries, runs, idle)
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""))
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s")

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "scale.json"
    report = {
        "benchmark": "scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
        },
        "settings": asdict(s),
        "quick": args.quick,
        "builds": [
            {**b.report(), "rows": row_counts(b.path) if b.path.exists() else None} for b in builds
        ],
        "decisions": [
            {**asdict(r), "decision_us": r.decision_us, "est_cpu_pct": r.load_pct}
            for r in decisions
        ],
        "growth": ratio_entries,
        "history_effect": history_entries,
        "daemon": [asdict(r) for r in runs],
        "idle": [asdict(i) for i in idle],
        "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in checks],
        "elapsed_s": elapsed,
    }
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
