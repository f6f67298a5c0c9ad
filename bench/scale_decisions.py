"""The scale benchmark's decision cost: poller-like ticks on the real store, every store call
timed."""

from __future__ import annotations

import random
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import quantile
from bench.scale_state import (
    API_FINISHED_ROWS,
    ENDPOINT,
    GIVE_UP_AFTER_S,
    LANE,
    MIN_INTERVAL_S,
    PAGE,
    PENDING_DELIVERIES,
    PICK,
    QPS,
    Settings,
    active_id,
    add_active,
    add_finished_api,
    add_finished_sql,
    checkpoint,
    polling_settings,
    running_detail,
)
from notifier.models import JobDetail
from notifier.polling.policy import plan_after_poll
from notifier.store import Store, WatchRow

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
            p90_us={op: quantile(v, 0.9, "lower") for op, v in self.samples.items() if v},
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
