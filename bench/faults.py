"""Fault benchmark: the daemon's promises under a full disk, a long outage, a second daemon.

Three scenarios, each with the real daemon against the vendor simulator and a verifying
receiver on 127.0.0.1, and each next to a baseline measured in the same run:

1. **Disk full.** The state file lives on a small tmpfs. Jobs finish and their deliveries are
   retrying (the receiver answers 503 twice per event) when the disk fills; it stays full for
   ``--full-seconds`` (default 65, so the once-a-minute repetition of the error shows), then is
   freed. Measured: events lost, attempts per delivery, error lines while full, seconds from
   freeing the disk to the daemon resuming. Baseline: the same workload without the fault.
2. **Outage longer than give_up_after.** Jobs are watched, the daemon stops, half of them
   finish, the daemon stays down for 2 × ``give_up_after``, then starts again. Measured: how
   many finished jobs are still reported, how many unfinished ones expire. Baseline: the same
   jobs with a daemon that never stopped.
3. **A second daemon** on the same state: its exit code, message and time to exit.

Mounting the tmpfs needs root. Run: ``python -m bench.faults`` (about 2.5 minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.harness import BenchRun, install_sigterm_exit
from bench.report import table, verdict
from notifier.tools.receiver import Receiver

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
CANNOT_WRITE = "state database cannot be written; polling and delivery are paused until it can"
RESUMED = "state database writable again; polling and delivery resumed"
POLLING = {"min_interval": "500ms", "max_interval": "2s", "give_up_after": "1h"}
#: Long enough that no delivery dies during the outage: the schedule outlasts it.
DELIVERY = {"retry_schedule": ["1s", "2s", "5s", "10s", "30s", "60s", "120s"], "timeout": "5s"}


@dataclass
class Row:
    scenario: str
    variant: str
    measures: dict[str, float | int | str] = field(default_factory=dict)


def wait(seconds: float) -> None:
    """Let wall time pass where that is the point (an outage's length), not a sync."""
    threading.Event().wait(seconds)


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def _fill(path: Path) -> None:
    with open(path / "filler", "ab", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                continue


def wait_delivered(run: BenchRun, ids: Sequence[str], timeout: float) -> set[str]:
    """Block until every job's event was accepted (2xx); return the jobs still missing."""

    def accepted(receiver: Receiver) -> set[str]:
        return {r.payload["data"]["id"] for r in receiver.accepted("/hook")}

    run.receiver.wait_for_blocking(lambda r: accepted(r) >= set(ids), timeout)
    return set(ids) - accepted(run.receiver)


def _add_jobs(run: BenchRun, prefix: str, n: int, *, never: int = 0) -> list[str]:
    """``n`` jobs finishing 2–6 s from now; the last ``never`` of them run for a day."""
    ids = []
    for i in range(n):
        run_s = 86_400.0 if i >= n - never else 1.0 + 4.0 * i / max(1, n)
        ids.append(run.sim.add_job(f"{prefix}{i:03d}", queue_s=1.0, run_s=run_s, outcome=20))
    return ids


def disk_full(work: Path, jobs: int, full_seconds: float, fault: bool) -> Row:
    variant = "disk full" if fault else "baseline (no fault)"
    state_dir = work / ("small" if fault else "plain")
    if fault:
        _mount(state_dir, "4m")
    try:
        with BenchRun(
            work / f"disk-{fault}",
            polling=POLLING,
            delivery=DELIVERY,
            state_dir=state_dir,
            log_level="info",
        ) as run:
            run.receiver.script("/hook", [503, 503])
            ids = _add_jobs(run, "disk", jobs)
            run.intake.watch(ids)
            # Deliveries are retrying (first attempts failed) when the fault starts.
            run.receiver.wait_for_blocking(lambda r: len(r.all("/hook")) >= jobs // 4, 60)
            resume_s: float | None = None
            if fault:
                _fill(state_dir)
                wait(full_seconds)
                (state_dir / "filler").unlink()
                freed = time.monotonic()
                if run.daemon.wait_for_log(lambda r: r.get("event") == RESUMED, 30):
                    resume_s = time.monotonic() - freed
            missing = wait_delivered(run, ids, timeout=120)
            per_event = Counter(r.webhook_id for r in run.receiver.all("/hook"))
            errors = [r for r in run.daemon.records() if r.get("event") == CANNOT_WRITE]
            tracebacks = [r for r in run.daemon.records() if "exception" in r]
            return Row(
                "disk full",
                variant,
                {
                    "jobs": jobs,
                    "lost": len(missing),
                    "max attempts/delivery": max(per_event.values(), default=0),
                    "error lines": len(errors),
                    "full for s": round(full_seconds, 1) if fault else "-",
                    "resumed after s": round(resume_s, 2) if resume_s is not None else "-",
                    "tracebacks": len(tracebacks),
                },
            )
    finally:
        if fault:
            subprocess.run(["umount", "-l", str(state_dir)], check=False)


def long_outage(work: Path, jobs: int, give_up_after: float, outage: bool) -> Row:
    variant = f"down {2 * give_up_after:.0f} s" if outage else "baseline (never down)"
    polling = dict(POLLING, give_up_after=f"{give_up_after}s")
    with BenchRun(work / f"outage-{outage}", polling=polling, log_level="info") as run:
        finishing = jobs // 2
        ids = _add_jobs(run, "out", jobs, never=jobs - finishing)
        run.intake.watch(ids)
        stats = run.sim.stats
        # Every job seen running once: then the daemon goes away.
        deadline = time.monotonic() + 30
        while any(stats()["jobs"][j]["detail_calls"] == 0 for j in ids):
            if time.monotonic() > deadline:
                break
            wait(0.05)
        if outage:
            run.stop_daemon()
            wait(2 * give_up_after)
            run.restart_daemon()
        finished = ids[:finishing]
        missing = wait_delivered(run, finished, timeout=60 + give_up_after)
        # The unfinished ones reach give_up_after too: each sends its lip_sync.expired.
        unfinished = ids[finishing:]
        wait_delivered(run, unfinished, timeout=60 + 2 * give_up_after)
        types = {
            (r.payload["data"]["id"], r.payload["type"]) for r in run.receiver.accepted("/hook")
        }
        expired = sum(1 for job, kind in types if kind == "lip_sync.expired" and job in unfinished)
        wrongly = sum(1 for job, kind in types if kind == "lip_sync.expired" and job in finished)
        return Row(
            "outage > give_up_after",
            variant,
            {
                "finished": finishing,
                "reported": finishing - len(missing),
                "unfinished": jobs - finishing,
                "expired": expired,
                "finished but expired": wrongly,
            },
        )


def second_daemon(work: Path) -> Row:
    with BenchRun(work / "second", polling=POLLING) as run:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "notifier", "-c", str(run.config_path), "run"],
            env=run.daemon.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        return Row(
            "second daemon",
            "same state file",
            {
                "exit": proc.returncode,
                "exit after s": round(took, 2),
                "names pid": str(f"pid {run.daemon.pid}" in message),
                "message": message[:110],
            },
        )


def listing(rows: Sequence[Row]) -> str:
    """A line a row: scenario, variant, then its measures as ``key=value``."""
    cells = [
        [row.scenario, row.variant, "  ".join(f"{k}={v}" for k, v in row.measures.items())]
        for row in rows
    ]
    return table(None, cells, sep=" ", min_widths=(24, 22), pad_last=False)


def verdicts(rows: Sequence[Row], full_seconds: float) -> list[tuple[bool, str]]:
    by = {(r.scenario, r.variant.split(" ")[0]): r.measures for r in rows}
    full = by[("disk full", "disk")]
    outage = next(r.measures for r in rows if r.variant.startswith("down"))
    second = by[("second daemon", "same")]
    resumed = full["resumed after s"]
    lines_expected = 1 + int(full_seconds // 60)
    return [
        (full["lost"] == 0, "disk full: 0 events lost"),
        (int(full["max attempts/delivery"]) <= 10, "disk full: <= 10 attempts per delivery"),
        (
            int(full["error lines"]) <= lines_expected,
            f"disk full: one error line a minute ({lines_expected} for {full_seconds:.0f} s)",
        ),
        (isinstance(resumed, float) and resumed <= 5.0, "disk full: resumed within 5 s of space"),
        (full["tracebacks"] == 0, "disk full: no tracebacks"),
        (outage["reported"] == outage["finished"], "outage: every finished job reported"),
        (
            outage["expired"] == outage["unfinished"] and outage["finished but expired"] == 0,
            "outage: only unfinished jobs expired (lip_sync.expired each)",
        ),
        (second["exit"] == 1 and second["names pid"] == "True", "second daemon: exit 1, names pid"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--jobs", type=int, default=20, help="jobs per scenario (default 20)")
    parser.add_argument(
        "--full-seconds", type=float, default=65.0, help="how long the disk stays full"
    )
    parser.add_argument("--give-up-after", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where faults.json goes")
    args = parser.parse_args(argv)
    install_sigterm_exit()
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cjn-faults-") as tmp:
        work = Path(tmp)
        for fault in (False, True):
            print(f"disk full: {'fault' if fault else 'baseline'} …", flush=True)
            rows.append(disk_full(work, args.jobs, args.full_seconds, fault))
        for outage in (False, True):
            print(f"long outage: {'outage' if outage else 'baseline'} …", flush=True)
            rows.append(long_outage(work, args.jobs, args.give_up_after, outage))
        print("second daemon …", flush=True)
        rows.append(second_daemon(work))
    print()
    print(listing(rows))
    print()
    results = verdicts(rows, args.full_seconds)
    for ok, name in results:
        print("  " + verdict(ok, name))
    print(f"\ntook {time.monotonic() - started:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faults.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
