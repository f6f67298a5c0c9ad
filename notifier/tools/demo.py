"""`chanjing-notifier demo`: the whole product on embedded defaults, offline, in one process.

A vendor simulator, a receiver that verifies every signature, a throw-away state file and
the real daemon, all on 127.0.0.1. Eight jobs with mixed outcomes and timings; the live view
shows them move and the callbacks arrive. Exit 0 when every expected callback arrived verified.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from notifier import log as logs
from notifier.config import load_config
from notifier.service.daemon import Daemon
from notifier.service.http_server import AppServer
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator

DEADLINE = 120.0
SLACK_PATH = "/slack/T000/B000/demo"
#: Receiver path → the endpoint's name in the demo config: every view names endpoints alike.
ENDPOINT_NAMES = {"/ops": "ops", "/analytics": "analytics", SLACK_PATH: "team"}


@dataclass(frozen=True)
class DemoJob:
    name: str
    queue_s: float
    run_s: float
    outcome: int
    msg: str | None = None


JOBS = [
    DemoJob("intro-en", 1.0, 6.0, 20),
    DemoJob("intro-zh", 2.0, 9.0, 20),
    DemoJob("promo-30s", 1.5, 12.0, 20),
    DemoJob("lesson-01", 3.0, 5.0, 20),
    DemoJob("lesson-02", 4.0, 8.0, 20),
    DemoJob("no-credit", 1.0, 3.0, 30, "insufficient balance: please top up your account"),
    DemoJob("bad-audio", 2.5, 4.0, 30, "audio decode failed"),
    DemoJob("outro", 0.5, 14.0, 20),
]

STATUS_TEXT = {0: "queued", 10: "generating", 20: "succeeded", 30: "failed"}


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def expected_callbacks(outcomes: dict[str, int]) -> dict[str, set[str]]:
    """Job ids each receiver path must get: ops all, analytics successes, Slack failures."""
    return {
        "/ops": set(outcomes),
        "/analytics": {j for j, o in outcomes.items() if o == 20},
        SLACK_PATH: {j for j, o in outcomes.items() if o == 30},
    }


def _job_of(payload: Any, job_ids: Iterable[str]) -> str | None:
    """The job a callback is about: ``data.id`` of a webhook, the id in a Slack text."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if isinstance(data, dict):
        return str(data.get("id"))
    text = str(payload.get("text", ""))
    return next((j for j in job_ids if j in text), None)


def _arrived(receiver: Receiver, job_ids: Iterable[str]) -> dict[str, set[str]]:
    """Job ids per receiver path whose callback was accepted (and verified, where signed)."""
    ids = list(job_ids)
    got: dict[str, set[str]] = {}
    for record in receiver.accepted():
        job_id = _job_of(record.payload, ids)
        if record.verified is not False and job_id is not None:
            got.setdefault(record.path, set()).add(job_id)
    return got


class Demo:
    def __init__(self, workdir: Path, console: Console) -> None:
        self.workdir = workdir
        self.console = console
        self.sim = VendorSimulator(SimConfig(app_id="demo-app", secret_key=secrets.token_hex(16)))
        self.ops_secrets = [_whsec(), _whsec()]
        self.analytics_secret = _whsec()
        self.receiver = Receiver(
            {"/ops": self.ops_secrets[1:], "/analytics": [self.analytics_secret]}
        )
        # The analytics receiver fails each first attempt: watch the retry schedule work.
        self.receiver.script("/analytics", [503])
        self.outcomes: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.started = time.monotonic()

    def write_config(self, sim_url: str, receiver_url: str) -> Path:
        env = {
            "DEMO_SECRET_KEY": self.sim.config.secret_key,
            "DEMO_OPS_SECRET": self.ops_secrets[0],
            "DEMO_OPS_SECRET_NEW": self.ops_secrets[1],
            "DEMO_ANALYTICS_SECRET": self.analytics_secret,
            "DEMO_SLACK_URL": receiver_url + SLACK_PATH,
        }
        os.environ.update(env)
        config = {
            "chanjing": {
                "base_url": sim_url,
                "app_id": "demo-app",
                "secret_key": "${DEMO_SECRET_KEY}",
                "qps": 10,
            },
            "state": {"path": str(self.workdir / "state.db")},
            "watch": {"file": str(self.workdir / "watch.yaml")},
            "polling": {"min_interval": "1s", "max_interval": "10s", "give_up_after": "10m"},
            "delivery": {"timeout": "5s", "retry_schedule": ["1s", "2s", "5s"]},
            "log": {"level": "error"},
            "endpoints": [
                {
                    "name": "ops",
                    "type": "webhook",
                    "url": receiver_url + "/ops",
                    "secret": ["${DEMO_OPS_SECRET}", "${DEMO_OPS_SECRET_NEW}"],
                },
                {
                    "name": "analytics",
                    "type": "webhook",
                    "url": receiver_url + "/analytics",
                    "secret": "${DEMO_ANALYTICS_SECRET}",
                    "events": ["lip_sync.succeeded"],
                },
                {
                    "name": "team",
                    "type": "slack",
                    "url": "${DEMO_SLACK_URL}",
                    "events": ["lip_sync.failed"],
                },
            ],
        }
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def create_jobs(self) -> None:
        for job in JOBS:
            job_id = self.sim.add_job(
                queue_s=job.queue_s, run_s=job.run_s, outcome=job.outcome, msg=job.msg
            )
            self.outcomes[job_id] = job.outcome
            self.names[job_id] = job.name
        # Half through the watch file, half through the queue, as users would.
        ids = list(self.outcomes)
        (self.workdir / "watch.yaml").write_text(
            yaml.safe_dump([{"id": j, "labels": {"name": self.names[j]}} for j in ids[:4]])
        )

    def enqueue_rest(self, daemon: Daemon) -> None:
        from notifier.models import WatchSpec

        ids = list(self.outcomes)[4:]
        daemon.store.enqueue([WatchSpec(j, {"name": self.names[j]}) for j in ids])

    def done(self) -> bool:
        got = _arrived(self.receiver, self.outcomes)
        return all(
            want <= got.get(path, set()) for path, want in expected_callbacks(self.outcomes).items()
        )

    # -- the view -------------------------------------------------------------------------

    def table(self, daemon: Daemon) -> Table:
        watches = {w["job_id"]: w for w in daemon.store.list_watches()}
        vendor = {j["id"]: j for j in self.sim.jobs()}
        got = _arrived(self.receiver, self.outcomes)
        expected = expected_callbacks(self.outcomes)
        attempts: dict[tuple[str, str], int] = {}
        for record in self.receiver.all():
            key = (record.path, str(_job_of(record.payload, self.outcomes)))
            attempts[key] = attempts.get(key, 0) + 1
        elapsed = time.monotonic() - self.started
        table = Table(
            title=f"chanjing-notifier demo — {elapsed:4.1f} s",
            caption="✓ arrived with a verified signature (n: after n attempts)",
            expand=False,
        )
        for column in ("job", "vendor", "progress", "watch", *ENDPOINT_NAMES.values()):
            table.add_column(column)
        for job_id, _outcome in self.outcomes.items():
            v = vendor.get(job_id, {})
            w = watches.get(job_id, {})
            status = STATUS_TEXT.get(int(v.get("status", 0)), "?")
            cells = []
            for path in ("/ops", "/analytics", SLACK_PATH):
                if job_id not in expected[path]:
                    cells.append("[dim]—[/dim]")
                elif job_id in got.get(path, set()):
                    tries = attempts.get((path, job_id), 1)
                    cells.append("[green]✓[/green]" + (f" ({tries})" if tries > 1 else ""))
                elif attempts.get((path, job_id)):
                    cells.append("[yellow]retrying[/yellow]")
                else:
                    cells.append("[dim]waiting[/dim]")
            table.add_row(
                self.names[job_id],
                status,
                f"{v.get('progress', 0)}%",
                str(w.get("state", "not yet watched")),
                *cells,
            )
        return table

    def summary(self, ok: bool) -> list[str]:
        got = _arrived(self.receiver, self.outcomes)
        lines = []
        for path, want in expected_callbacks(self.outcomes).items():
            name = {"/ops": "ops (webhook)", "/analytics": "analytics (webhook)"}.get(
                path, "team (slack)"
            )
            lines.append(f"  {name:22} {len(want & got.get(path, set()))}/{len(want)} received")
        bad = sum(1 for r in self.receiver.all() if r.verified is False)
        lines.append(f"  signature failures     {bad}")
        lines.append(
            f"  vendor calls           {self.sim.stats()['calls']} "
            f"(max {self.sim.stats()['max_per_second']}/s, 40001: "
            f"{self.sim.stats()['codes'].get('40001', 0)})"
        )
        lines.append(
            "demo OK: every callback arrived and verified"
            if ok
            else "demo FAILED: some callbacks did not arrive in time"
        )
        return lines


async def _run(console: Console, live: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="chanjing-demo-") as tmp:
        demo = Demo(Path(tmp), console)
        sim_server = AppServer(demo.sim.make_app())
        rec_server = AppServer(demo.receiver.make_app())
        await sim_server.start()
        await rec_server.start()
        demo.create_jobs()
        config_path = demo.write_config(sim_server.url, rec_server.url)
        config = load_config(config_path)
        logs.configure(config.log.level, json_lines=not live)
        daemon = Daemon(config, str(config_path))
        runner = asyncio.create_task(daemon.run())
        demo.enqueue_rest(daemon)
        console.print(
            f"vendor simulator {sim_server.url} · receiver {rec_server.url} · "
            f"{len(JOBS)} jobs · state {daemon.store.where}"
        )
        ok = False
        deadline = time.monotonic() + DEADLINE
        seen: set[str] = set()
        view = Live(demo.table(daemon), console=console, refresh_per_second=4) if live else None
        with view if view is not None else contextlib.nullcontext():
            while time.monotonic() < deadline and not runner.done():
                if demo.done():
                    ok = True
                    break
                if view is not None:
                    view.update(demo.table(daemon))
                else:
                    _print_progress(console, demo, seen)
                # Redraw on each callback, and at least four times a second.
                await demo.receiver.wait_for(lambda _r: demo.done(), timeout=0.25)
            if view is not None:
                view.update(demo.table(daemon))
        if not live:
            _print_progress(console, demo, seen)
        daemon.request_stop()
        await asyncio.wait_for(runner, 15)
        await rec_server.stop()
        await sim_server.stop()
        for line in demo.summary(ok):
            console.print(line)
        return 0 if ok else 1


def _print_progress(console: Console, demo: Demo, seen: set[str]) -> None:
    """Non-interactive output: one line per new fact."""
    for job in demo.sim.jobs():
        key = f"{job['id']}:{job['status']}"
        if job["id"] in demo.names and key not in seen:
            seen.add(key)
            console.print(f"job {demo.names[job['id']]:10} {STATUS_TEXT.get(job['status'])}")
    for record in demo.receiver.all():
        job_id = _job_of(record.payload, demo.outcomes) or "?"
        key = f"{record.path}:{job_id}:{record.attempt}"
        if key in seen:
            continue
        seen.add(key)
        verdict = {True: "signature verified", False: "SIGNATURE FAILED", None: "slack message"}
        console.print(
            f"callback {ENDPOINT_NAMES.get(record.path, record.path):9} "
            f"{demo.names.get(job_id, job_id):10} "
            f"attempt {record.attempt} → HTTP {record.status_returned} "
            f"({verdict[record.verified]})"
        )


def run_demo() -> int:
    live = sys.stdout.isatty()
    # Piped, lines are kept whole (rich would wrap them at 80 columns, mid-phrase).
    console = Console(soft_wrap=not live)
    try:
        return asyncio.run(_run(console, live))
    except KeyboardInterrupt:
        return 130


__all__ = ["run_demo"]
