"""The gateway (``gateway.listen``): what a forwarded call costs, and what absorbing saves.

The real daemon on the shared harness (fresh SQLite state, log level info as shipped, the
gateway on 127.0.0.1); httpx keep-alive clients. 1: latency of a detail call the gateway
forwards (a job the daemon does not watch), through it and straight to the simulator,
alternately; 2: calls/s of it from ``--concurrency`` threads. For 1-2 ``chanjing.qps`` is 1000
and the simulator unlimited (the one budget is not what is measured), the clients run in a
child process (off this process's GIL, which the simulator uses), and the direct one shares
the daemon's vendor token. 3: the issue's workload at qps 10, shipped polling: 100 watched
jobs (80 finish), an application polling all 100 every 5 s (20 calls/s) for ``--seconds``,
refetching its token on 10400 as a plain-HTTP client does; through the gateway, straight to
the vendor (the baseline: what the user had before), and no application. 4: the daemon's
detection p95 (simulator's completion to first webhook) in those runs.
Run: ``python -m bench.gateway`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.harness import BenchRun, Credentials, install_sigterm_exit
from bench.report import quantile
from tests.kit import free_port

DETAIL = "/open/v1/video_lip_sync/detail"
TOKEN = "/open/v1/access_token"
HIGH_QPS = 1000


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile; inf when empty."""
    return quantile(values, q, "nearest") if values else math.inf


def _gateway(port: int) -> dict[str, Any]:
    return {"gateway": {"listen": f"127.0.0.1:{port}"}}


def _code(response: httpx.Response) -> object:
    """The envelope's code (None when the answer is not one)."""
    with contextlib.suppress(ValueError, AttributeError):
        return response.json().get("code")
    return None


def _token_body(creds: Credentials) -> dict[str, str]:
    return {"app_id": creds.app_id, "secret_key": creds.secret_key}


# --------------------------------------------------------------------------- 1 and 2


def _rate(base: str, token: str, job: str, workers: int, secs: float) -> float:
    """Answered code-0 calls per second from ``workers`` threads, each with its own
    keep-alive client (httpx's AsyncClient slows down under concurrency by itself)."""
    stop = time.perf_counter() + secs

    def worker(_: int) -> int:
        ok = 0
        with httpx.Client(base_url=base, headers={"access_token": token}, timeout=30) as client:
            while time.perf_counter() < stop:
                ok += _code(client.get(DETAIL, params={"id": job})) == 0
        return ok

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(worker, range(workers))) / secs


def _client_side(
    gw: str, sim: str, tokens: tuple[str, str], job: str, samples: int, workers: int, secs: float
) -> dict[str, Any]:
    """Measured in a child process: a client here would fight the simulator's thread for
    this process's GIL (and lose ~5 ms a switch)."""
    times: dict[str, list[float]] = {"gateway": [], "direct": []}
    with (
        httpx.Client(base_url=gw, headers={"access_token": tokens[0]}, timeout=30) as via,
        httpx.Client(base_url=sim, headers={"access_token": tokens[1]}, timeout=30) as direct,
    ):
        for n in range(samples + 20):  # alternately, so both see the same machine
            pair = [("gateway", via), ("direct", direct)]
            for name, client in pair if n % 2 else pair[::-1]:
                t0 = time.perf_counter()
                code = _code(client.get(DETAIL, params={"id": job}))
                took = time.perf_counter() - t0
                assert code == 0, (name, code)
                if n >= 20:  # the first ones warm up connections
                    times[name].append(took * 1000)
    rates = {
        "gateway": _rate(gw, tokens[0], job, workers, secs),
        "direct": _rate(sim, tokens[1], job, workers, secs),
    }
    return {"ms": times, "rates": rates}


def forwarding(tmp: Path, samples: int, workers: int, secs: float) -> dict[str, Any]:
    port = free_port()
    with BenchRun(tmp / "fwd", qps=HIGH_QPS, sections=_gateway(port), log_level="info") as run:
        run.sim.config.qps = 0  # unlimited: the direct client's calls/s are not capped at 1000
        job = run.sim.add_job(run_s=3600)  # never watched: every detail call is forwarded
        gw = f"http://127.0.0.1:{port}"
        answer = httpx.post(gw + TOKEN, json=_token_body(run.credentials)).json()
        headers = {"access_token": answer["data"]["access_token"]}
        # The first forward fetches the daemon's vendor token; the direct client shares it.
        assert _code(httpx.get(gw + DETAIL, params={"id": job}, headers=headers)) == 0
        tokens = (headers["access_token"], run.sim.current_token() or "")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            args = (gw, run.servers.sim_url, tokens, job, samples, workers, secs)
            result: dict[str, Any] = pool.submit(_client_side, *args).result()
        # The gateway's own clock for the latency samples: its handler, vendor call included.
        calls = [r for r in run.daemon.records() if r.get("outcome") == "forwarded"]
        result["inside"] = [float(r["duration_ms"]) for r in calls[21 : 21 + samples]]
        return result


# --------------------------------------------------------------------------- 3 and 4


async def _app(
    base: str, creds: Credentials, ids: list[str], rate: float, secs: float
) -> Counter[str]:
    """An application polling ``ids`` round-robin at ``rate`` calls/s; counts its answers."""
    seen: Counter[str] = Counter()
    lock = asyncio.Lock()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def fetch() -> str:
            seen["token calls"] += 1
            body = (await client.post(TOKEN, json=_token_body(creds))).json()
            return str((body.get("data") or {}).get("access_token", ""))

        token = await fetch()

        async def one(job_id: str) -> None:
            nonlocal token
            used = token
            try:
                code = _code(
                    await client.get(DETAIL, params={"id": job_id}, headers={"access_token": used})
                )
            except httpx.HTTPError:
                code = None
            seen["calls"] += 1
            seen[f"code {code}"] += 1
            if code == 10400:
                async with lock:
                    if used == token:  # refetch once per revoked token
                        token = await fetch()

        start, tasks = time.monotonic(), []
        for n in range(int(rate * secs)):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(ids[n % len(ids)])))
        await asyncio.gather(*tasks)
    return seen


def workload(tmp: Path, app: str, secs: float, seed: int) -> dict[str, Any]:
    port = free_port()
    run = BenchRun(tmp / app, sections=_gateway(port), log_level="info")
    with run:  # the same jobs in every run
        tracker, rng = run.tracker(), random.Random(seed)
        ending = [
            run.sim.add_job(queue_s=rng.uniform(0.5, 2), run_s=rng.uniform(2, secs - 5))
            for _ in range(80)
        ]
        lasting = [run.sim.add_job(queue_s=1, run_s=3600) for _ in range(20)]
        run.intake.watch(ending + lasting)
        t0 = time.time()
        if app == "alone":
            seen: Counter[str] = Counter()
            threading.Event().wait(secs)  # the same window, no application
        else:
            base = f"http://127.0.0.1:{port}" if app == "gateway" else run.servers.sim_url
            seen = asyncio.run(_app(base, run.credentials, ending + lasting, 20.0, secs))
        t1 = time.time()
        missing = tracker.wait_all(ending, 15)
        stats = run.sim.stats()
        # Whole vendor seconds inside the application's window.
        window = [stats["per_second"].get(str(s), 0) for s in range(int(t0) + 1, int(t1))]
        outcomes = Counter(
            r.get("outcome") for r in run.daemon.records() if r.get("event") == "gateway call"
        )
        latencies = tracker.detection_latencies(stats["jobs"], ending)
        p95 = pct([*latencies.values(), *[math.inf] * len(missing)], 0.95)
        calls, codes = seen["calls"], stats["codes"]
        return {  # as printed; "_": for the goals
            "calls/s": f"{sum(window) / max(1, len(window)):.1f}",
            "failed": f"{calls - seen['code 0']} of {calls}" if calls else "-",
            "absorbed": str(outcomes["absorbed"]) if app == "gateway" else "-",
            "40001": f"{codes.get('40001', 0)} / {seen['code 40001']}",
            "10400": str(codes.get("10400", 0)),
            "tokens": str(stats["tokens_issued"]),
            "max/s": str(max(window, default=0)),
            "p95": f"{p95:.2f}" + (f" ({len(missing)} missed)" if missing else ""),
            "_p95": p95,
            "_per_s": sum(window) / max(1, len(window)),
            "_ok": calls == seen["code 0"] > 0,
        }


# --------------------------------------------------------------------------- report


def main(samples: int, workers: int, secs: float, seed: int) -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        fwd = forwarding(Path(tmp), samples, workers, 3.0)
        runs = [workload(Path(tmp), app, secs, seed) for app in ("gateway", "direct", "alone")]
    ms, rates = fwd["ms"], fwd["rates"]
    g50, g99, d50, d99 = (pct(ms[n], q) for n in ("gateway", "direct") for q in (0.5, 0.99))
    gw, alone = runs[0], runs[2]
    ratio, cheap = gw["_p95"] / alone["_p95"], gw["_per_s"] <= alone["_per_s"] * 1.05

    def ok(passed: bool) -> str:
        return "PASS" if passed else "MISSED"

    def both(values: list[float]) -> str:
        return f"{pct(values, 0.5):.2f} / {pct(values, 0.99):.2f}"

    added = f"+{g50 - d50:.3f} / +{g99 - d99:.3f}: " + ok(g50 - d50 <= 1 and g99 - d99 <= 5)
    rows = [
        [f"1 detail call p50 / p99, ms ({samples})", both(ms["gateway"]), both(ms["direct"])],
        ["1 of it in the gateway's handler", both(fwd["inside"]), "-", "-", "-"],
        [f"2 calls/s, {workers} concurrent", *(f"{rates[k]:.0f}" for k in ms), "-", "-"],
    ]
    rows[0] += ["-", added]
    goals = {
        "calls/s": ("3 vendor calls/s", "≤ alone +5%: " + ok(cheap)),
        "failed": ("3 app calls failed", "0: " + ok(gw["_ok"])),
        "absorbed": ("3 app answers absorbed", "-"),
        "40001": ("3 40001 at vendor / seen by app", "0"),
        "10400": ("3 10400 answers at vendor", "0"),
        "tokens": ("3 tokens the vendor issued", "1"),
        "max/s": ("3 most vendor calls in a second", "≤ 10"),
        "p95": ("4 detection p95, s", f"≤ 1.10× alone, {ratio:.2f}×: " + ok(ratio <= 1.10)),
    }
    rows += [[label, *(r[key] for r in runs), goal] for key, (label, goal) in goals.items()]
    print(
        f"1-2: chanjing.qps 1000, simulator unlimited, detail of an unwatched job (forwarded), "
        f"loopback. 3-4: qps 10, shipped polling, 100 watched jobs (80 finish), an app "
        f"polling all 100 at 20 calls/s for {secs:g} s. Load average {load:.1f} at start."
    )
    head = ["measure", "through gateway", "direct (baseline)", "daemon alone", "goal"]
    for row in [head, *rows]:
        print(f"{row[0]:<36} {row[1]:<16} {row[2]:<18} {row[3]:<13} {row[4]}")


if __name__ == "__main__":
    install_sigterm_exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="latency samples per path")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="workload 3 window")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    main(args.samples, args.concurrency, args.seconds, args.seed)
