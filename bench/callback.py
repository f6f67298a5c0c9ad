"""Vendor callback latency: from the vendor's callback POST to the webhook, against polling only.

The real daemon on the shared harness (simulator, receiver, a fresh SQLite state, log level
info as shipped) with ``polling.min_interval: 30s`` and the list sweep on. The same jobs run
twice: once created with the daemon's callback URL (the simulator POSTs the detail envelope
when each finishes, as the vendor does), once without (the baseline: polling only). Every job
is registered through the queue when it is created, in both runs. Latencies are taken on one
wall clock: callback sent → first webhook received, and job finished → first webhook.
Run: ``python -m bench.callback`` (about 2 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import BenchRun, install_sigterm_exit
from bench.report import quantile
from tests.kit import free_port

ENV_TOKEN = "BENCH_CALLBACK_TOKEN"
POLLING = {"min_interval": "30s", "max_interval": "60s", "give_up_after": "1h", "list_sweep": True}


def _percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": quantile(values, 0.5, "nearest"),
        "p95": quantile(values, 0.95, "nearest"),
        "max": max(values) if values else float("nan"),
    }


def run_variant(jobs: int, seed: int, *, callback: bool, spread: float) -> dict[str, Any]:
    """One run: ``jobs`` jobs created over ``spread`` seconds, each 2-10 s long."""
    token = secrets.token_hex(24)
    port = free_port()
    intake = {"listen": f"127.0.0.1:{port}", "callback_token": "${" + ENV_TOKEN + "}"}
    hook = f"http://127.0.0.1:{port}/v1/chanjing/callback/{token}"
    rng = random.Random(seed)
    plan = [(n * spread / jobs, rng.uniform(0.5, 3.0), rng.uniform(1.5, 7.0)) for n in range(jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        run = BenchRun(
            Path(tmp),
            polling=POLLING,
            sections={"intake": intake},
            env={ENV_TOKEN: token},
            log_level="info",
        )
        with run:
            tracker = run.tracker()
            ids: list[str] = []
            started = time.monotonic()
            for at, queue_s, run_s in plan:
                time.sleep(max(0.0, started + at - time.monotonic()))  # the workload's pace
                job_id = run.sim.add_job(
                    queue_s=queue_s, run_s=run_s, callback=hook if callback else None
                )
                run.intake.watch([job_id], {"bench": "callback"})
                ids.append(job_id)
            missing = tracker.wait_all(ids, timeout=180)
            jobs_stats = run.sim.stats()["jobs"]
            sent = [
                tracker.first[i].received_at - jobs_stats[i]["callback_sent_at"]
                for i in ids
                if i in tracker.first and jobs_stats[i]["callback_sent_at"] is not None
            ]
            finished = [
                tracker.first[i].received_at - jobs_stats[i]["completed_at"]
                for i in ids
                if i in tracker.first
            ]
            stats = run.sim.stats()
            return {
                "callback_to_webhook": _percentiles(sent),
                "finish_to_webhook": _percentiles(finished),
                "missing": len(missing),
                "duplicates": sum(len(v) > 1 for v in tracker.event_ids.values()),
                "max_per_second": stats["max_per_second"],
                "throttled": stats["codes"].get("40001", 0),
            }


def main(jobs: int, seed: int, spread: float) -> None:
    rows = [
        ("callback", run_variant(jobs, seed, callback=True, spread=spread)),
        ("polling only", run_variant(jobs, seed, callback=False, spread=spread)),
    ]
    print(f"{jobs} jobs over {spread:g} s, min_interval 30s, list sweep on, qps 10")
    print(
        f"{'variant':<13} {'measure':<20} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  "
        "missing dup max/s 40001"
    )
    for name, r in rows:
        for measure in ("callback_to_webhook", "finish_to_webhook"):
            p = r[measure]
            print(
                f"{name:<13} {measure:<20} {p['p50']:7.2f} {p['p95']:7.2f} {p['max']:7.2f}  "
                f"{r['missing']:>7} {r['duplicates']:>3} {r['max_per_second']:>5} "
                f"{r['throttled']:>5}"
            )


if __name__ == "__main__":
    install_sigterm_exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds to create them over")
    args = parser.parse_args()
    main(args.jobs, args.seed, args.spread)
