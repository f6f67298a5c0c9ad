"""What discovery (``watch.discover``) costs: list calls (and detail calls) per minute on an
idle account and on a busy one, against the same daemon with discovery off.

The real daemon on the shared harness (simulator, receiver, a fresh SQLite state) with the
shipped polling settings (a sweep every ``min_interval``, 5 s). Idle: no job at all. Busy:
"other applications" create ``--rate`` jobs a second on the account (the simulator's
``noise_rate``) and the list call returns at most 20 jobs a page (``list_page_cap``); with
discovery every one of them becomes a watch and makes its event. Calls are counted by the
simulator over ``--seconds`` after readiness. Run: ``python -m bench.discovery`` (about
2.5 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.harness import BenchRun, install_sigterm_exit

LIST = "/open/v1/video_lip_sync/list"
DETAIL = "/open/v1/video_lip_sync/detail"


def measure(tmp: Path, *, discover: bool, rate: float, seconds: float) -> dict[str, Any]:
    sections: dict[str, Any] = {"watch": {"discover": {"since": "start"}}} if discover else {}
    run = BenchRun(tmp / ("on" if discover else "off"), sections=sections, log_level="info")
    with run:
        if rate > 0:
            run.sim.set_faults(noise_rate=rate, list_page_cap=20)
        before = run.sim.stats()["by_path"]
        threading.Event().wait(seconds)  # a fixed window of the daemon's own pace
        after = run.sim.stats()["by_path"]
        per_second = run.sim.stats()["per_second"]
        minutes = seconds / 60
        sweeps = [r for r in run.daemon.records() if r.get("event") == "discovered jobs"]
        return {
            "list_per_min": (after.get(LIST, 0) - before.get(LIST, 0)) / minutes,
            "detail_per_min": (after.get(DETAIL, 0) - before.get(DETAIL, 0)) / minutes,
            "max_per_s": max(per_second.values(), default=0),
            "discovered": sum(int(r.get("count", 0)) for r in sweeps),
            "events": len(run.receiver.accepted("/hook")),
        }


def main(rate: float, seconds: float) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for account, noise in (("idle", 0.0), ("busy", rate)):
            for discover in (False, True):
                r = measure(Path(tmp), discover=discover, rate=noise, seconds=seconds)
                rows.append((account, "on" if discover else "off (baseline)", r))
    print(f"{seconds:.0f} s per run; busy = {rate:g} new jobs/s by other applications")
    print(
        f"{'account':8} {'discovery':16} {'list/min':>9} {'detail/min':>11} "
        f"{'max/s':>6} {'discovered':>11} {'events':>7}"
    )
    for account, label, r in rows:
        print(
            f"{account:8} {label:16} {r['list_per_min']:9.1f} {r['detail_per_min']:11.1f} "
            f"{r['max_per_s']:6d} {r['discovered']:11d} {r['events']:7d}"
        )


if __name__ == "__main__":
    install_sigterm_exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="busy: new jobs per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="window per run")
    args = parser.parse_args()
    main(args.rate, args.seconds)
