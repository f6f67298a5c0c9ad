"""Delivery benchmark: webhook throughput, and a slow endpoint's (non-)effect on the others.

Every run builds a fresh state file with the Store API (``add_watches`` + ``record_terminal``
of a status-20 event from :func:`notifier.delivery.transition.build_event`): N terminal events, each
with a pending delivery per endpoint. Then the real daemon (``python -m notifier -c CFG run``
through :mod:`bench.harness`) starts on it and delivers to a local, signature-checking
:class:`~notifier.tools.receiver.Receiver` running in this process. Times are on the receiver's
clock (``time.time``), from the daemon's ``READY=1`` to the receiver having accepted a
verified callback for every event.

1. **Throughput.** ``delivery.concurrency`` 8 (the default) and 32. Baseline: the same N
   signed bodies POSTed by a plain sequential loop (one ``httpx.Client``, one request at a
   time) from this process: what one connection without concurrency gets through. Target:
   >= 300 deliveries/s.
2. **Isolation.** Endpoints "fast" and "slow" (the receiver answers the slow path after 10 s;
   ``delivery.timeout`` 15 s), N events (5000: the fast endpoint is still busy when the slow
   one first answers) each routed to both. Baseline: the same N events with only the fast
   endpoint configured. Target: the fast endpoint's completion time with the slow one present
   matches the baseline within noise (<= 1.25x). The first run then waits for the slow
   endpoint's first deliveries, to show they do succeed (after ~10 s).

Every setting runs ``--repeat`` times (default 2), interleaved with the others, and the
targets are judged on the median: the machine may be busy with other work now and then.

The daemon logs at ``info`` (the product default: one line per delivery). Run
``python -m bench.delivery`` (about 2.5 min; ``--quick``: N = 1000, one repeat, ~30 s;
``--help`` for options).
Prints tables and PASS/FAIL lines, writes ``bench/out/delivery.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from bench.harness import (
    CallbackTracker,
    CpuWindow,
    Credentials,
    Daemon,
    DaemonError,
    EndpointSpec,
    Servers,
    build_state,
    daemon_config,
    daemon_env,
    install_sigterm_exit,
    job_id,
    make_events,
    start_daemon,
    work_dir,
    write_config,
)
from bench.report import fmt, machine, table, verdict

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
FAST = EndpointSpec("fast", "/fast")
SLOW_DELAY_S = 10.0
SLOW = EndpointSpec("slow", "/slow", delay_s=SLOW_DELAY_S)
BASELINE_PATH = "/baseline"
DELIVERY_TIMEOUT = "15s"
#: delivery.concurrency: the default, and more.
DEFAULT_CONCURRENCY = 8
CONCURRENCY = (DEFAULT_CONCURRENCY, 32)
#: Generous: at the target rate N events take N / 300 s.
WAIT_S = 300.0

TARGET_RATE = 300.0
TARGET_ISOLATION = 1.25


# --------------------------------------------------------------------------- state


def delivery_states(path: Path) -> dict[str, dict[str, int]]:
    """{endpoint: {state: count}} read from the state file after the run."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        out: dict[str, dict[str, int]] = {}
        for endpoint, state, count in db.execute(
            "SELECT endpoint, state, COUNT(*) FROM deliveries GROUP BY endpoint, state"
        ):
            out.setdefault(str(endpoint), {})[str(state)] = int(count)
        return out
    finally:
        db.close()


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    """One way of getting N events to the receiver."""

    name: str
    kind: str  # "baseline" | "daemon"
    #: The same setting run again (``--repeat``) shares the name; this tells them apart.
    repeat: int
    events: int
    endpoints: list[str]
    concurrency: int | None = None
    build_s: float | None = None
    start_to_ready_s: float | None = None
    #: Receiver clock: from the start signal (READY=1, or the loop's start) to the last
    #: first-accepted callback of the fast endpoint.
    complete_s: float | None = None
    rate: float | None = None
    #: Rate between the first and the last accepted callback (ramp-up left out).
    steady_rate: float | None = None
    first_s: float | None = None
    p50_s: float | None = None
    attempts: int = 0
    missing: int = 0
    duplicates: int = 0
    failed_verification: int = 0
    daemon_cpu_pct: float | None = None
    daemon_cpu_ms_per_delivery: float | None = None
    #: The slow endpoint (isolation): requests seen while the fast one was being served,
    #: and seconds from ready to its first delivered attempt.
    slow_requests_during: int | None = None
    slow_first_delivered_s: float | None = None
    states: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: int = 0
    exit_code: int | None = None
    error: str | None = None


def _finish(run: Run, tracker: CallbackTracker, started_at: float, wanted: Sequence[str]) -> None:
    """Fill the receiver-side numbers of ``run`` from ``tracker`` (first accepted per job)."""
    times = sorted(r.received_at for r in tracker.first.values())
    run.attempts = tracker.attempts
    run.failed_verification = tracker.failed_verification
    run.missing = len(set(wanted) - set(tracker.first))
    run.duplicates = sum(len(ids) - 1 for ids in tracker.event_ids.values())
    if not times:
        return
    run.first_s = times[0] - started_at
    run.p50_s = times[len(times) // 2] - started_at
    run.complete_s = times[-1] - started_at
    run.rate = len(times) / run.complete_s if run.complete_s > 0 else None
    if len(times) > 1 and times[-1] > times[0]:
        run.steady_rate = (len(times) - 1) / (times[-1] - times[0])


# --------------------------------------------------------------------------- baseline


def run_sequential(n: int, credentials: Credentials, repeat: int = 0) -> Run:
    """The same N signed event bodies, POSTed one at a time with one ``httpx.Client``."""
    run = Run("sequential httpx loop", "baseline", repeat, n, [BASELINE_PATH])
    endpoint = EndpointSpec("baseline", BASELINE_PATH)
    events = [event for _, event in make_events(n, time.time())]
    signer = Webhook(credentials.webhook_secret)
    with Servers(credentials, [endpoint]) as servers:
        url = servers.receiver_url + BASELINE_PATH
        tracker = CallbackTracker(servers.receiver, BASELINE_PATH)
        with httpx.Client(timeout=15.0) as client:
            started_at = time.time()
            for event in events:
                when = datetime.fromtimestamp(int(time.time()), tz=UTC)
                body = event.body.decode()
                headers = {
                    "content-type": "application/json",
                    "webhook-id": event.event_id,
                    "webhook-timestamp": str(int(when.timestamp())),
                    "webhook-signature": signer.sign(event.event_id, when, body),
                }
                client.post(url, content=event.body, headers=headers).raise_for_status()
        tracker.wait_all([job_id(i) for i in range(n)], 30)
        _finish(run, tracker, started_at, [job_id(i) for i in range(n)])
    return run


# --------------------------------------------------------------------------- the daemon


def run_daemon(
    name: str,
    work: Path,
    n: int,
    endpoints: Sequence[EndpointSpec],
    concurrency: int,
    credentials: Credentials,
    *,
    repeat: int = 0,
    wait_for_slow: bool = False,
) -> Run:
    """Build the state, start the daemon, wait for the fast endpoint to have every event."""
    names = [ep.name for ep in endpoints]
    run = Run(name, "daemon", repeat, n, names, concurrency)
    slug = name.replace(" ", "_").replace(",", "").replace("+", "_").replace("(", "")
    slug = f"{slug.replace(')', '')}-{repeat}"
    state_path = work / f"{slug}.db"
    run.build_s = build_state(state_path, n, names)
    wanted = [job_id(i) for i in range(n)]
    with Servers(credentials, endpoints) as servers:
        config_path = work / f"{slug}.yaml"
        write_config(
            config_path,
            daemon_config(
                state_path=state_path,
                sim_url=servers.sim_url,
                receiver_url=servers.receiver_url,
                endpoints=endpoints,
                delivery={"timeout": DELIVERY_TIMEOUT, "concurrency": concurrency},
                log_level="info",
                app_id=credentials.app_id,
            ),
        )
        tracker = CallbackTracker(servers.receiver, FAST.path)
        daemon: Daemon | None = None
        try:
            daemon = start_daemon(config_path, daemon_env(credentials), work / f"{slug}.log")
            run.start_to_ready_s = daemon.wait_ready(timeout=60)
            assert daemon.ready_at is not None and daemon.pid is not None
            window = CpuWindow(daemon.pid).start()
            missing = tracker.wait_all(wanted, WAIT_S)
            window.stop()
            run.daemon_cpu_pct = window.percent
            _finish(run, tracker, daemon.ready_at, wanted)
            if not missing:
                run.daemon_cpu_ms_per_delivery = 1000.0 * window.cpu_s / n
            if SLOW in endpoints:
                run.slow_requests_during = len(servers.receiver.all(SLOW.path))
                if wait_for_slow:

                    def slow_delivered(record: dict[str, Any]) -> bool:
                        return record.get("endpoint") == SLOW.name and (
                            record.get("event") == "delivered"
                        )

                    if daemon.wait_for_log(slow_delivered, SLOW_DELAY_S + 20):
                        first = next(r for r in daemon.records() if slow_delivered(r))
                        stamp = datetime.fromisoformat(str(first["timestamp"]))
                        run.slow_first_delivered_s = stamp.timestamp() - daemon.ready_at
            run.problems = len(daemon.problems())
            run.exit_code = daemon.terminate()
            run.states = delivery_states(state_path)
        except DaemonError as exc:
            run.error = str(exc).splitlines()[0]
            print(f"  {name}: {exc}", flush=True)
        finally:
            if daemon is not None:
                daemon.close()
    return run


# --------------------------------------------------------------------------- report


def throughput_table(runs: Sequence[Run]) -> str:
    base = _median([r.rate or 0.0 for r in runs if r.kind == "baseline"])
    headers = [
        "run",
        "N",
        "state build s",
        "ready→all s",
        "deliveries/s",
        "vs sequential",
        "steady /s",
        "first s",
        "p50 s",
        "daemon CPU %",
        "CPU ms/delivery",
        "missing",
        "dups",
        "bad sig",
    ]
    rows = [
        [
            r.name,
            str(r.events),
            fmt(r.build_s, "{:.2f}"),
            fmt(r.complete_s, "{:.2f}"),
            fmt(r.rate, "{:.0f}"),
            f"{(r.rate or 0.0) / base:.2f}x" if base else "-",
            fmt(r.steady_rate, "{:.0f}"),
            fmt(r.first_s, "{:.2f}"),
            fmt(r.p50_s, "{:.2f}"),
            fmt(r.daemon_cpu_pct, "{:.0f}"),
            fmt(r.daemon_cpu_ms_per_delivery, "{:.2f}"),
            str(r.missing) if r.error is None else "ERROR",
            str(r.duplicates),
            str(r.failed_verification),
        ]
        for r in runs
    ]
    return table(headers, rows, align="r", rule=True)


def isolation_table(runs: Sequence[Run]) -> str:
    base = _median([r.complete_s or 0.0 for r in runs if r.endpoints == [FAST.name]])
    headers = [
        "run",
        "endpoints",
        "fast: ready→all s",
        "vs fast only",
        "fast /s",
        "fast p50 s",
        "slow requests meanwhile",
        "slow 1st delivered s",
        "missing",
    ]
    rows = [
        [
            r.name,
            "+".join(r.endpoints),
            fmt(r.complete_s, "{:.2f}"),
            f"{(r.complete_s or 0.0) / base:.2f}x" if base else "-",
            fmt(r.rate, "{:.0f}"),
            fmt(r.p50_s, "{:.2f}"),
            fmt(r.slow_requests_during, "{}"),
            fmt(r.slow_first_delivered_s, "{:.1f}"),
            str(r.missing) if r.error is None else "ERROR",
        ]
        for r in runs
    ]
    return table(headers, rows, align="r", rule=True)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def by_name(runs: Sequence[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.name, []).append(r)
    return groups


def verdicts(
    throughput: Sequence[Run], isolation: Sequence[Run]
) -> list[tuple[str, bool | None, str]]:
    """Targets, judged on the median over repeats (``None``: for information, not a target:
    the target is for the default settings)."""
    out: list[tuple[str, bool | None, str]] = []
    for name, runs in by_name(throughput).items():
        if runs[0].kind != "daemon":
            continue
        complete = all(r.error is None and not r.missing for r in runs)
        rate = _median([r.rate or 0.0 for r in runs])
        met = complete and rate >= TARGET_RATE
        out.append(
            (
                f"{name}: >= {TARGET_RATE:g} deliveries/s",
                met if runs[0].concurrency == DEFAULT_CONCURRENCY else (met or None),
                f"median {rate:.0f}/s over {len(runs)} run(s)"
                + ("" if complete else "; some callbacks missing"),
            )
        )
    base = [r for r in isolation if r.endpoints == [FAST.name]]
    slow = [r for r in isolation if SLOW.name in r.endpoints]
    if base and slow:
        if all(r.complete_s and not r.missing and r.error is None for r in base + slow):
            t_base = _median([r.complete_s or 0.0 for r in base])
            t_slow = _median([r.complete_s or 0.0 for r in slow])
            ratio = t_slow / t_base
            out.append(
                (
                    f"a {SLOW_DELAY_S:g} s endpoint does not delay the fast one "
                    f"(completion <= {TARGET_ISOLATION:g}x the fast-only run)",
                    ratio <= TARGET_ISOLATION,
                    f"median {t_slow:.2f} s vs {t_base:.2f} s: {ratio:.2f}x",
                )
            )
        else:
            out.append(("isolation runs completed", False, "missing callbacks or errors"))
        delivered = [r.slow_first_delivered_s for r in slow if r.slow_first_delivered_s]
        out.append(
            (
                "the slow endpoint's deliveries succeed (after its delay, within the timeout)",
                bool(delivered),
                f"first delivered {delivered[0]:.1f} s after ready" if delivered else "none",
            )
        )
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delivery",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--quick", action="store_true", help="N = 1000 for every run (default 3000 / 5000)"
    )
    parser.add_argument("-n", "--events", type=int, help="events per throughput run")
    parser.add_argument(
        "--isolation-events",
        type=int,
        help="events per isolation run (default 5000: the fast endpoint is still busy when "
        "the slow one first answers)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="run every setting this many times, interleaved; targets use the median "
        "(default 2, --quick 1)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (state, logs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    install_sigterm_exit()
    args = parse_args(argv)
    # The receiver's aiohttp server logs a traceback for each slow request the daemon
    # abandons when it stops; that is expected here, not news.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    n = args.events or (1000 if args.quick else 3000)
    args.isolation_events = args.isolation_events or (1000 if args.quick else 5000)
    args.repeat = args.repeat or (1 if args.quick else 2)
    with work_dir("cjn-delivery-", args.keep) as work:
        return _main(args, n, work)


def _main(args: argparse.Namespace, n: int, work: Path) -> int:
    started = time.monotonic()
    credentials = Credentials.generate()
    print(f"delivery benchmark: N = {n} events per run; {os.cpu_count()} CPUs", flush=True)

    print("\n[1/3] throughput to one local webhook endpoint", flush=True)
    throughput: list[Run] = []
    for repeat in range(args.repeat):
        throughput.append(run_sequential(n, credentials, repeat))
        for concurrency in CONCURRENCY:
            name = f"daemon, concurrency {concurrency}"
            print(f"  {name} (run {repeat + 1}/{args.repeat}) …", flush=True)
            throughput.append(
                run_daemon(name, work, n, [FAST], concurrency, credentials, repeat=repeat)
            )
    print(throughput_table(throughput))

    print(
        f"\n[2/3] isolation: a {SLOW_DELAY_S:g} s endpoint next to a fast one "
        f"(N = {args.isolation_events}, timeout {DELIVERY_TIMEOUT}, "
        f"concurrency {CONCURRENCY[0]})",
        flush=True,
    )
    isolation: list[Run] = []
    for repeat in range(args.repeat):
        print(f"  run {repeat + 1}/{args.repeat} …", flush=True)
        isolation.append(
            run_daemon(
                "fast only (baseline)",
                work,
                args.isolation_events,
                [FAST],
                CONCURRENCY[0],
                credentials,
                repeat=repeat,
            )
        )
        isolation.append(
            run_daemon(
                "fast + slow",
                work,
                args.isolation_events,
                [FAST, SLOW],
                CONCURRENCY[0],
                credentials,
                repeat=repeat,
                wait_for_slow=repeat == 0,
            )
        )
    print(isolation_table(isolation))

    print("\n[3/3] targets (issue 4, part 5)")
    checks = verdicts(throughput, isolation)
    for name, ok, detail in checks:
        print("  " + verdict(ok, name, detail))
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s")

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "delivery.json"
    report = {
        "benchmark": "delivery",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events": n,
        "isolation_events": args.isolation_events,
        "repeat": args.repeat,
        "quick": args.quick,
        "throughput": [asdict(r) for r in throughput],
        "isolation": [asdict(r) for r in isolation],
        "targets": [{"target": t, "pass": ok, "detail": d} for t, ok, d in checks],
        "elapsed_s": elapsed,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(ok is not False for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
