"""Detection-latency benchmark: the real daemon, the vendor simulator, scripted workloads.

For every workload × polling variant (same seed, so the same jobs) it starts a fresh
simulator, receiver, state file and daemon (see :mod:`bench.harness`), creates the jobs in
the simulator at the times the workload says and watches each one from that moment through
the daemon's SQLite queue, then waits until every job's callback has arrived.

Measured on the simulator's and the receiver's own clocks (both ``time.time`` here):

- detection latency per job: first callback attempt received − vendor-side completion;
- vendor calls per second while there was a backlog, the most calls in any second, 40001
  answers, total vendor calls; wall time.

"Backlog" is judged from outside the daemon: a whole second during which more jobs were
open (created, callback not yet received) than the budget can look at once per
``min_interval`` with the cheapest call the variant has: ``qps × min_interval`` jobs when
polling one job per call, 100 times that with the list sweep (a list page covers 100 jobs).
The table also shows calls/s over the seconds with more than ``qps × min_interval`` open jobs
for every variant, so the list sweep's thrift is visible next to the baseline.

Run ``python -m bench.latency`` (``--help`` for options). Prints a table and the issue's
targets as PASS/FAIL lines, writes ``bench/out/latency.json`` and ``bench/out/latency.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.harness import BenchRun, DaemonError, install_sigterm_exit
from bench.latency_workloads import FULL, QUICK, WORKLOADS, JobPlan, Workload, make_workload
from bench.report import fmt, git_state, machine, quantile, table

QPS = 10
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 60.0
RETRY_SCHEDULE = ["1s", "2s"]
BASELINE = "round_robin"
#: Jobs one list call can observe (the vendor's largest page_size).
LIST_PAGE = 100
DEFAULT_OUT = Path(__file__).resolve().parent / "out"

#: name → the ``polling`` keys that select it.
VARIANTS: dict[str, dict[str, Any]] = {
    "round_robin": {"policy": "round_robin", "list_sweep": False},
    "adaptive": {"policy": "adaptive", "list_sweep": False},
    "adaptive+list": {"policy": "adaptive", "list_sweep": True},
}


# --------------------------------------------------------------------------- statistics


def summary(values: Sequence[float]) -> dict[str, float | None]:
    def clean(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 3)

    mean = sum(values) / len(values) if values else math.nan
    return {
        "p50": clean(quantile(values, 0.5)),
        "p95": clean(quantile(values, 0.95)),
        "max": clean(max(values) if values else math.nan),
        "mean": clean(mean),
    }


def backlog_seconds(
    created: Sequence[float], reported: Sequence[float], start: float, threshold: float
) -> list[int]:
    """Whole seconds (>= ``start``) with more than ``threshold`` jobs open at both ends.

    A job is open from its creation until its first callback (``inf`` if none came).
    """
    if not created:
        return []

    def open_at(t: float) -> int:
        return sum(1 for c, r in zip(created, reported, strict=True) if c <= t < r)

    finite = [r for r in reported if math.isfinite(r)]
    end = max(finite) if finite else max(created)
    return [
        s
        for s in range(math.ceil(start), math.floor(end))
        if open_at(s) > threshold and open_at(s + 1) > threshold
    ]


# --------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    workload: str
    variant: str
    polling: dict[str, Any]
    jobs: int
    detected: int = 0
    missing: list[str] = field(default_factory=list)
    duplicates: int = 0
    failed_verification: int = 0
    latency: dict[str, float | None] = field(default_factory=dict)
    #: Completion → the first detail answer showing the job terminal (simulator clock): the
    #: polling part of the latency. Jobs first seen terminal through a list call are not
    #: covered (the simulator does not record those); ``n`` says how many jobs are.
    detail_seen_latency: dict[str, float | None] = field(default_factory=dict)
    calls_total: int = 0
    calls_by_path: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    qps_40001: int = 0
    max_calls_per_second: int = 0
    #: Mean vendor calls/s over the seconds with more than ``qps × min_interval`` jobs open.
    busy_calls_per_s: float | None = None
    #: Seconds of backlog for this variant (see ``_analyse``) and the mean share of the
    #: budget used over them.
    backlog_s: int = 0
    budget_use: float | None = None
    wall_s: float | None = None
    startup_s: float | None = None
    daemon_rc: int | None = None
    daemon_problems: list[str] = field(default_factory=list)
    error: str | None = None
    per_second: list[list[int]] = field(default_factory=list)
    job_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing and self.daemon_rc == 0

    def latencies(self) -> list[float]:
        return [r["latency"] for r in self.job_rows if r["latency"] is not None]


def _drive(run: BenchRun, workload: Workload) -> float:
    """Create and watch the jobs on the workload's schedule; returns the start time."""
    groups: dict[float, list[JobPlan]] = {}
    for job in workload.jobs:
        groups.setdefault(job.at, []).append(job)
    t0 = time.time()
    for at in sorted(groups):
        delay = t0 + at - time.time()
        if delay > 0:
            time.sleep(delay)  # pacing arrivals is the workload, not synchronisation
        batch = groups[at]
        for job in batch:
            run.sim.add_job(
                job.job_id,
                queue_s=job.queue_s,
                run_s=job.run_s,
                outcome=job.outcome,
                progress_points=[list(p) for p in job.progress_points]
                if job.progress_points
                else None,
            )
        run.intake.watch(j.job_id for j in batch)
    return t0


def run_one(
    workload: Workload, variant: str, *, seed: int, out_dir: Path, log: Callable[[str], None]
) -> RunResult:
    polling = {
        "min_interval": f"{MIN_INTERVAL_S:g}s",
        "max_interval": f"{MAX_INTERVAL_S:g}s",
        **VARIANTS[variant],
    }
    result = RunResult(workload.name, variant, polling, jobs=len(workload.jobs))
    run_dir = out_dir / "runs" / f"{workload.name}-{variant}"
    ids = [j.job_id for j in workload.jobs]
    try:
        with BenchRun(
            run_dir,
            qps=QPS,
            seed=seed,
            polling=polling,
            delivery={"retry_schedule": RETRY_SCHEDULE},
            log_level="warning",
        ) as run:
            result.startup_s = round(run.startup_s or 0.0, 3)
            tracker = run.tracker()
            if workload.sim:
                run.sim.set_faults(**dict(workload.sim))
            t0 = _drive(run, workload)
            slack = 60 + 3 * len(ids) / QPS * MIN_INTERVAL_S
            missing = tracker.wait_all(ids, t0 + workload.last_completion + slack - time.time())
            stats = run.sim.stats()
            result.daemon_rc = run.stop_daemon()
            result.daemon_problems = [str(r.get("event"))[:200] for r in run.daemon.problems()[:20]]
            _analyse(result, workload, t0, stats, tracker.first, tracker.event_ids, missing)
            result.failed_verification = tracker.failed_verification
    except DaemonError as exc:
        result.error = str(exc)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    if result.error:
        log(f"  error: {result.error.splitlines()[0]} (see {run_dir / 'daemon.log'})")
    return result


def _analyse(
    result: RunResult,
    workload: Workload,
    t0: float,
    stats: Mapping[str, Any],
    first: Mapping[str, Any],
    event_ids: Mapping[str, set[str]],
    missing: set[str],
) -> None:
    sim_jobs: Mapping[str, Mapping[str, Any]] = stats["jobs"]
    rows: list[dict[str, Any]] = []
    created: list[float] = []
    reported: list[float] = []
    for plan in workload.jobs:
        sj = sim_jobs[plan.job_id]
        cb = first.get(plan.job_id)
        cb_at = None if cb is None else float(cb.received_at)
        seen = sj["first_terminal_seen_at"]
        rows.append(
            {
                "id": plan.job_id,
                "outcome": plan.outcome,
                "created_at": sj["created_at"],
                "completed_at": sj["completed_at"],
                "first_seen_at": seen,
                "callback_at": cb_at,
                "latency": None if cb_at is None else round(cb_at - sj["completed_at"], 4),
                "detail_seen_latency": None
                if seen is None
                else round(seen - sj["completed_at"], 4),
                "detail_calls": sj["detail_calls"],
            }
        )
        created.append(sj["created_at"])
        reported.append(math.inf if cb_at is None else cb_at)
    result.job_rows = rows
    result.missing = sorted(missing)
    result.detected = len(workload.jobs) - len(missing)
    result.duplicates = sum(1 for s in event_ids.values() if len(s) > 1)
    result.latency = summary(result.latencies())
    seen_values = [r["detail_seen_latency"] for r in rows if r["detail_seen_latency"] is not None]
    result.detail_seen_latency = {**summary(seen_values), "n": len(seen_values)}

    codes = {str(k): int(v) for k, v in stats["codes"].items()}
    result.codes = codes
    result.qps_40001 = codes.get("40001", 0)
    result.calls_total = int(stats["calls"])
    result.calls_by_path = {str(k): int(v) for k, v in stats["by_path"].items()}
    result.max_calls_per_second = int(stats["max_per_second"])
    per_second = {int(s): int(n) for s, n in stats["per_second"].items()}
    last = max(reported) if all(math.isfinite(r) for r in reported) else stats["now"]
    result.wall_s = round(last - t0, 3)
    base = int(t0)
    result.per_second = [
        [s - base, per_second.get(s, 0)] for s in range(base, math.ceil(stats["now"]))
    ]
    # Skip the partial first second and the daemon's intake second (the queue is read every 1 s).
    start = base + 2
    busy = backlog_seconds(created, reported, start, QPS * MIN_INTERVAL_S)
    if busy:
        result.busy_calls_per_s = round(sum(per_second.get(s, 0) for s in busy) / len(busy), 2)
    # A backlog: more open jobs than the budget can look at once per min_interval with the
    # cheapest call the variant has (a list call covers up to a page of jobs).
    per_call = LIST_PAGE if result.polling.get("list_sweep") else 1
    window = backlog_seconds(created, reported, start, QPS * MIN_INTERVAL_S * per_call)
    result.backlog_s = len(window)
    if window:
        result.budget_use = round(sum(per_second.get(s, 0) for s in window) / len(window) / QPS, 3)


# --------------------------------------------------------------------------- report


def _baseline_p95(results: Sequence[RunResult], workload: str) -> float | None:
    for r in results:
        if r.workload == workload and r.variant == BASELINE and r.latency.get("p95") is not None:
            return r.latency["p95"]
    return None


def _ratio(r: RunResult, results: Sequence[RunResult]) -> float | None:
    base = _baseline_p95(results, r.workload)
    p95 = r.latency.get("p95")
    if base is None or p95 is None or base <= 0:
        return None
    return p95 / base


def results_table(results: Sequence[RunResult]) -> str:
    header = [
        "workload",
        "variant",
        "jobs",
        "detected",
        "p50 s",
        "p95 s",
        "max s",
        "p95 vs rr",
        f"calls/s >{QPS * MIN_INTERVAL_S:g} open",
        "budget use",
        "max/s",
        "40001",
        "calls",
        "wall s",
    ]
    rows = [header]
    for r in results:
        ratio = _ratio(r, results)
        rows.append(
            [
                r.workload,
                r.variant,
                str(r.jobs),
                f"{r.detected}" + ("" if r.ok else " !"),
                fmt(r.latency.get("p50")),
                fmt(r.latency.get("p95")),
                fmt(r.latency.get("max")),
                "-" if ratio is None else f"{ratio:.2f}x",
                fmt(r.busy_calls_per_s),
                "-" if r.budget_use is None else f"{r.budget_use:.0%}",
                str(r.max_calls_per_second),
                str(r.qps_40001),
                str(r.calls_total),
                fmt(r.wall_s, "{:.0f}"),
            ]
        )
    return table(header, rows[1:], align="llr", rule=True)


@dataclass
class Target:
    name: str
    passed: bool | None  # None: could not be judged (a run or the baseline is missing)
    detail: str


def targets(results: Sequence[RunResult]) -> list[Target]:
    """The issue's targets, for every non-baseline variant that ran."""
    out: list[Target] = []
    by_key = {(r.workload, r.variant): r for r in results}
    variants = [v for v in VARIANTS if v != BASELINE and any(r.variant == v for r in results)]

    def p(r: RunResult, key: str) -> float | None:
        return r.latency.get(key)

    for v in variants:
        r = by_key.get(("saturate", v))
        if r is not None:
            p50, p95, ratio = p(r, "p50"), p(r, "p95"), _ratio(r, results)
            out.append(
                Target(
                    f"saturate p50 <= 2 s [{v}]",
                    None if p50 is None else p50 <= 2,
                    f"p50 {fmt(p50, '{:.2f}')} s",
                )
            )
            out.append(
                Target(
                    f"saturate p95 <= 6 s [{v}]",
                    None if p95 is None else p95 <= 6,
                    f"p95 {fmt(p95, '{:.2f}')} s",
                )
            )
            out.append(
                Target(
                    f"saturate p95 >= 5x lower than round_robin [{v}]",
                    None if ratio is None else ratio <= 0.2,
                    "no baseline"
                    if ratio is None
                    else f"{1 / ratio:.1f}x lower"
                    if ratio > 0
                    else "p95 0",
                )
            )
        r = by_key.get(("steady", v))
        if r is not None:
            p95 = p(r, "p95")
            out.append(
                Target(
                    f"steady p95 <= 2 s [{v}]",
                    None if p95 is None else p95 <= 2,
                    f"p95 {fmt(p95, '{:.2f}')} s",
                )
            )
        r = by_key.get(("light", v))
        if r is not None:
            p95 = p(r, "p95")
            limit = MIN_INTERVAL_S + 1
            out.append(
                Target(
                    f"light p95 <= min_interval + 1 s = {limit:g} s [{v}]",
                    None if p95 is None else p95 <= limit,
                    f"p95 {fmt(p95, '{:.2f}')} s",
                )
            )
        r = by_key.get(("busy", v))
        if r is not None and VARIANTS[v]["list_sweep"]:
            p95 = p(r, "p95")
            out.append(
                Target(
                    f"busy p95 <= 5 s [{v}]",
                    None if p95 is None else p95 <= 5,
                    f"p95 {fmt(p95, '{:.2f}')} s",
                )
            )
        for w in ("jumpy", "burst"):
            r = by_key.get((w, v))
            if r is not None:
                ratio = _ratio(r, results)
                out.append(
                    Target(
                        f"{w} p95 <= 1.1 x round_robin [{v}]",
                        None if ratio is None else ratio <= 1.1,
                        "no baseline"
                        if ratio is None
                        else f"p95 {fmt(p(r, 'p95'), '{:.2f}')} s = {ratio:.2f}x round_robin",
                    )
                )
    for r in results:
        if r.budget_use is not None and r.backlog_s >= 5:
            out.append(
                Target(
                    f"budget use >= 90% with a backlog [{r.workload}/{r.variant}]",
                    r.budget_use >= 0.9,
                    f"{r.budget_use * QPS:.2f} calls/s over {r.backlog_s} s of backlog",
                )
            )
    bad_qps = [f"{r.workload}/{r.variant}={r.qps_40001}" for r in results if r.qps_40001]
    out.append(Target("40001 = 0 in every run", not bad_qps, ", ".join(bad_qps) or "none"))
    over = [
        f"{r.workload}/{r.variant}={r.max_calls_per_second}"
        for r in results
        if r.max_calls_per_second > QPS
    ]
    out.append(
        Target(f"never more than {QPS} calls in a second", not over, ", ".join(over) or "ok")
    )
    lost = [
        f"{r.workload}/{r.variant}: "
        + (r.error.splitlines()[0] if r.error else f"{len(r.missing)} missing, rc {r.daemon_rc}")
        for r in results
        if not r.ok
    ]
    out.append(Target("every callback delivered, daemon exit 0", not lost, "; ".join(lost) or "ok"))
    return out


def plot(results: Sequence[RunResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    workloads = list(dict.fromkeys(r.workload for r in results))
    cols = min(3, len(workloads))
    rows = math.ceil(len(workloads) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, w in zip(axes.flat, workloads, strict=False):
        top = max(max(r.latencies(), default=0.0) for r in results if r.workload == w)
        for r in results:
            if r.workload != w:
                continue
            # Clamp to the axis: a log scale cannot show 0.
            values = sorted(max(v, 0.05) for v in r.latencies())
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(
                values,
                ys,
                where="post",
                label=f"{r.variant} (p95 {fmt(r.latency.get('p95'))} s)",
            )
        ax.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
        ax.set_title(f"{w} ({next(r.jobs for r in results if r.workload == w)} jobs)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.set_xlim(0.05, max(2.0, top * 1.3))
        ax.set_xlabel("detection latency (s, log): completion → first callback")
        ax.set_ylabel("fraction of jobs")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(workloads) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI


def _names(value: str, known: Iterable[str], what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {unknown or value!r}; choose from {', '.join(known)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description="Detection latency of the real daemon vs the round-robin baseline.",
    )
    parser.add_argument(
        "--workloads",
        type=lambda s: _names(s, WORKLOADS, "workload"),
        default=list(WORKLOADS),
        help=f"comma-separated, default all: {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--variants",
        type=lambda s: _names(s, VARIANTS, "variant"),
        default=list(VARIANTS),
        help=f"comma-separated, default all: {','.join(VARIANTS)}",
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~2-3 min): 1/5 of the jobs, 1/8 of the times (targets only indicative)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target fails (not only on errors)"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="run nothing: print the table and targets of a previous latency.json, redraw its PNG",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_exit()
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("interrupted; the daemon of the current run was stopped", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    if args.from_json is not None:
        doc = json.loads(args.from_json.read_text())
        known = {f.name for f in fields(RunResult)}
        results = [RunResult(**{k: v for k, v in run.items() if k in known}) for run in doc["runs"]]
        report(results, doc["meta"]["title"], quick=doc["meta"]["quick"])
        out_dir: Path = args.out if args.out != DEFAULT_OUT else args.from_json.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_png(results, out_dir / "latency.png", doc["meta"]["title"])
        return _exit_code(results, args.check)

    scale = QUICK if args.quick else FULL
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    workloads = [make_workload(name, args.seed, scale) for name in args.workloads]
    total = len(workloads) * len(args.variants)
    results = []
    started = time.time()
    n = 0
    for workload in workloads:
        for variant in args.variants:
            n += 1
            log(f"[{n}/{total}] {workload.name} / {variant}: {workload.description}")
            t = time.time()
            r = run_one(workload, variant, seed=args.seed, out_dir=out_dir, log=log)
            results.append(r)
            log(
                f"  {r.detected}/{r.jobs} callbacks, p50 {fmt(r.latency.get('p50'))} s, "
                f"p95 {fmt(r.latency.get('p95'))} s, {r.calls_total} vendor calls, "
                f"40001 x{r.qps_40001} ({time.time() - t:.0f} s)"
            )

    mode = "quick (scaled workloads)" if args.quick else "full"
    title = f"chanjing-notifier detection latency, seed {args.seed}, {mode}"
    checks = report(results, title, quick=args.quick)

    json_path = out_dir / "latency.json"
    doc = {
        "meta": {
            "title": title,
            "seed": args.seed,
            "quick": args.quick,
            "scale": asdict(scale),
            "started_at": started,
            "duration_s": round(time.time() - started, 1),
            "git": git_state(),
            **machine(),
        },
        "settings": {
            "qps": QPS,
            "min_interval_s": MIN_INTERVAL_S,
            "max_interval_s": MAX_INTERVAL_S,
            "retry_schedule": RETRY_SCHEDULE,
            "variants": VARIANTS,
            "busy_threshold_jobs": QPS * MIN_INTERVAL_S,
            "backlog_threshold_jobs": {
                v: QPS * MIN_INTERVAL_S * (LIST_PAGE if p["list_sweep"] else 1)
                for v, p in VARIANTS.items()
            },
        },
        "workloads": {
            w.name: {
                "description": w.description,
                "sim": dict(w.sim),
                "jobs": [asdict(j) for j in w.jobs],
            }
            for w in workloads
        },
        "runs": [asdict(r) for r in results],
        "targets": [asdict(c) for c in checks],
    }
    json_path.write_text(json.dumps(doc, indent=1))
    print()
    print(f"wrote {json_path}")
    _write_png(results, out_dir / "latency.png", title)
    return _exit_code(results, args.check)


def report(results: Sequence[RunResult], title: str, *, quick: bool) -> list[Target]:
    """Print the table and the targets; return the targets."""
    checks = targets(results)
    print()
    print(title)
    print(
        f"qps {QPS}, min_interval {MIN_INTERVAL_S:g} s, max_interval {MAX_INTERVAL_S:g} s; "
        "latency = first callback received - vendor completion"
    )
    print()
    print(results_table(results))
    print()
    if quick:
        print("targets (quick run: workloads are scaled down, so these are only indicative):")
    else:
        print("targets (issue 4, part 3):")
    for c in checks:
        mark = "n/a " if c.passed is None else ("PASS" if c.passed else "FAIL")
        print(f"  {mark}  {c.name}: {c.detail}")
    return checks


def _write_png(results: Sequence[RunResult], path: Path, title: str) -> None:
    try:
        plot(results, path, title)
    except ImportError:
        print("matplotlib is not installed: no PNG (pip install matplotlib)", file=sys.stderr)
        return
    print(f"wrote {path}")


def _exit_code(results: Sequence[RunResult], check: bool) -> int:
    failed_runs = any(not r.ok for r in results)
    failed_targets = any(c.passed is False for c in targets(results))
    return 1 if failed_runs or (check and failed_targets) else 0


if __name__ == "__main__":
    sys.exit(main())
