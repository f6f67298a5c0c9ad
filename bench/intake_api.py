"""Intake API throughput: job ids accepted per second through ``POST /v1/watches``.

The real daemon (on the shared harness: simulator, receiver, a fresh SQLite state, log level
info as shipped) with ``intake.listen`` on 127.0.0.1; one client on one keep-alive connection
posts fresh ids, one at a time and in batches of 100, and waits for each 202. Every id becomes
a watch the daemon then polls (the simulator does not know them: they fail), so the API
shares the event loop with real work, as it would. Run: ``python -m bench.intake_api``
(about 20 s).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import BenchRun, install_sigterm_exit
from tests.kit import free_port

ENV_TOKEN = "BENCH_INTAKE_TOKEN"


def measure(client: httpx.Client, batch: int, requests: int, prefix: str) -> dict[str, float]:
    latencies: list[float] = []
    accepted = 0
    started = time.perf_counter()
    for r in range(requests):
        ids = [f"{prefix}-{r:05d}-{i:03d}" for i in range(batch)]
        t0 = time.perf_counter()
        response = client.post("/v1/watches", json={"ids": ids, "labels": {"bench": prefix}})
        latencies.append(time.perf_counter() - t0)
        response.raise_for_status()
        accepted += response.json()["accepted"]
    took = time.perf_counter() - started
    latencies.sort()
    return {
        "ids_per_s": accepted / took,
        "requests_per_s": requests / took,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "accepted": accepted,
    }


def main(singles: int, batches: int) -> None:
    token = secrets.token_hex(24)
    port = free_port()
    sections = {"intake": {"listen": f"127.0.0.1:{port}", "tokens": ["${" + ENV_TOKEN + "}"]}}
    with tempfile.TemporaryDirectory() as tmp:
        run = BenchRun(Path(tmp), sections=sections, env={ENV_TOKEN: token}, log_level="info")
        with (
            run,
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ) as client,
        ):
            measure(client, 1, 50, "warmup")
            for batch, requests in ((1, singles), (100, batches)):
                r = measure(client, batch, requests, f"b{batch}")
                print(
                    f"batch {batch:>3}: {r['ids_per_s']:8.0f} ids/s "
                    f"({r['requests_per_s']:.0f} requests/s, p50 {r['p50_ms']:.1f} ms, "
                    f"p95 {r['p95_ms']:.1f} ms, {r['accepted']:.0f} ids)"
                )


if __name__ == "__main__":
    install_sigterm_exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=1000, help="requests of 1 id")
    parser.add_argument("--batches", type=int, default=100, help="requests of 100 ids")
    args = parser.parse_args()
    main(args.singles, args.batches)
