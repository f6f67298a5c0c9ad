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
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    CpuWindow,
    Credentials,
    Daemon,
    DaemonError,
    EndpointSpec,
    Servers,
    daemon_config,
    daemon_env,
    install_sigterm_exit,
    proc_memory_mb,
    start_daemon,
    work_dir,
    write_config,
)
from bench.report import fmt, machine, table, verdict
from bench.scale_decisions import (
    CALLS_PER_S,
    DECISION_OPS,
    NOTE_MIN_US,
    OPS,
    PERIODIC_OPS,
    DecisionResult,
    StateFile,
    StepClock,
    run_decisions,
)
from bench.scale_state import (
    ENDPOINT,
    FULL,
    QPS,
    QUICK,
    SIM_RUN_S,
    Settings,
    active_id,
    add_active,
    row_counts,
    total_polls,
)
from notifier.store import Store

DEFAULT_OUT = Path(__file__).resolve().parent / "out"

#: Targets from issue 4, part 4.
TARGET_RSS_MB = 200.0
TARGET_READY_S = 5.0
TARGET_FLAT_RATIO = 3.0
TARGET_HISTORY_RATIO = 1.5
TARGET_IDLE_CPU_PCT = 1.0


# --------------------------------------------------------------------------- /proc


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
    return next((r for r in daemon.records() if r.get("event") == "ready"), None)


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
    polls0 = total_polls(state_path)
    calls0 = int(servers.sim.stats()["calls"])
    daemon: Daemon | None = None
    try:
        daemon = start_daemon(config_path, daemon_env(credentials), work / f"{slug}.log")
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
        result.exit_code = daemon.terminate()
        result.stop_s = time.monotonic() - stopping
        result.problems_at_stop = len(daemon.problems()) - result.problems
    except (DaemonError, OSError) as exc:
        result.error = str(exc).splitlines()[0]
        print(f"  {label}: {exc}", flush=True)
    finally:
        if daemon is not None:
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
                daemon = start_daemon(config_path, daemon_env(credentials), work / f"{slug}.log")
                daemons.append((label, daemon))
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
    return table(headers, rows, align="r", rule=True)


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
    return table(headers, rows, align="r", rule=True)


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
    return table(headers, rows, align="r", rule=True)


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
            fmt(r.start_to_ready_s, "{:.2f}"),
            fmt(r.ready_watching, "{:,}"),
            fmt(r.rss_ready_mb),
            fmt(r.rss_end_mb),
            fmt(r.hwm_mb),
            fmt(r.cpu_pct),
            fmt(r.polls_per_s),
            fmt(r.vendor_calls_per_s),
            fmt(r.stop_s, "{:.2f}"),
            fmt(r.exit_code, "{}"),
            f"{r.problems} ({r.problems_at_stop})" if r.error is None else "ERROR",
        ]
        for r in runs
    ]
    return table(headers, rows, align="r", rule=True)


def idle_table(results: Sequence[IdleResult]) -> str:
    headers = ["process", "window s", "CPU s", "CPU %", "RSS MB", "ready s"]
    rows = [
        [
            r.label,
            f"{r.window_s:.1f}",
            f"{r.cpu_s:.2f}",
            f"{r.cpu_pct:.2f}",
            fmt(r.rss_mb),
            fmt(r.start_to_ready_s, "{:.2f}"),
        ]
        for r in results
    ]
    return table(headers, rows, align="r", rule=True)


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
    with work_dir("cjn-scale-", args.keep) as work:
        return _main(args, s, work)


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
        print("  " + verdict(ok, name, detail))
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s")

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "scale.json"
    report = {
        "benchmark": "scale",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version},
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
