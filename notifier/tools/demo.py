"""`chanjing-notifier demo`: the whole product on embedded defaults, offline, in one process.

A vendor simulator, a receiver that verifies every signature, a throw-away state file and the
real daemon, all on 127.0.0.1. Two vendor accounts (``default`` and ``studio``, each an app of
its own on the simulator with its own budget and token): fourteen jobs of three kinds
(lip-sync, a digital-human video, a speech task) on the first with mixed outcomes and timings,
reaching the daemon each way a job can: the watch file, the queue, the HTTP API, the vendor's
callback, discovery, and a create through the gateway by the demo acting as the user's own
application; three on the second, through the watch file, the queue and the API, each
naming the account, so each account's notifications show. The live view shows them move and
the callbacks arrive, naming the account. Exit 0 when every expected callback arrived
verified.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from notifier import kinds
from notifier import log as logs
from notifier.config import load_config
from notifier.gateway.door import CREATE_PATH, LABEL_HEADER
from notifier.models import DEFAULT_ACCOUNT, WatchSpec
from notifier.polling.vendor import DETAIL_PATH, TOKEN_PATH
from notifier.service.daemon import Daemon
from notifier.service.http_server import AppServer
from notifier.tools.receiver import Receiver
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.simulator import SimConfig, VendorSimulator

DEADLINE = 120.0
SLACK_PATH = "/slack/T000/B000/demo"
#: Receiver path → the endpoint's name in the demo config: every view names endpoints alike.
ENDPOINT_NAMES = {"/ops": "ops", "/analytics": "analytics", SLACK_PATH: "team"}
#: The demo's vendor accounts: name in the daemon's config → app id on the simulator. The
#: first is the default one (the account of a watch that names none).
ACCOUNTS = {DEFAULT_ACCOUNT: "demo-app", "studio": "demo-studio"}


@dataclass(frozen=True)
class DemoJob:
    name: str
    queue_s: float
    run_s: float
    #: ``succeeded`` or ``failed``.
    outcome: str
    msg: str | None = None
    #: How the job reaches the daemon: file, queue, api, callback, discovery or gateway.
    via: str = "file"
    kind: str = kinds.DEFAULT_KIND
    #: The vendor account the job is created on (a name of :data:`ACCOUNTS`).
    account: str = DEFAULT_ACCOUNT


OK, FAIL = "succeeded", "failed"
JOBS = [
    DemoJob("intro-en", 1.0, 6.0, OK),
    DemoJob("intro-zh", 2.0, 9.0, OK),
    DemoJob("promo-30s", 1.5, 12.0, OK),
    DemoJob("lesson-01", 3.0, 5.0, OK),
    DemoJob("avatar-video", 1.0, 8.0, OK, kind="video"),
    DemoJob("voiceover", 0.5, 3.0, OK, kind="tts"),
    DemoJob("lesson-02", 4.0, 8.0, OK, via="queue"),
    DemoJob(
        "no-credit", 1.0, 3.0, FAIL, "insufficient balance: please top up your account", "queue"
    ),
    DemoJob("bad-audio", 2.5, 4.0, FAIL, "audio decode failed", "queue"),
    DemoJob("outro", 0.5, 14.0, OK, via="queue"),
    DemoJob("api-upload", 1.0, 5.0, OK, via="api"),
    DemoJob("cb-render", 1.0, 7.0, OK, via="callback"),
    DemoJob("found-later", 0.5, 4.0, OK, via="discovery"),
    DemoJob("app-render", 1.0, 6.0, OK, via="gateway"),
    # The other account's: each way in that names an account names it.
    DemoJob("studio-teaser", 1.0, 6.0, OK, via="file", account="studio"),
    DemoJob("studio-reel", 2.0, 10.0, OK, via="queue", account="studio"),
    DemoJob("studio-dub", 1.0, 4.0, FAIL, "voice model unavailable", "api", account="studio"),
]
#: The view's wording for each way in.
VIA_TEXT = {
    "file": "watch file",
    "queue": "queue",
    "api": "HTTP API",
    "callback": "vendor callback",
    "discovery": "discovery",
    "gateway": "gateway",
}
#: Jobs created before the daemon's state (so discovery, ``since: start``, leaves them alone)
#: are dated this much earlier on the vendor's side.
OLD_JOB_AGE = 60

#: How the gateway served the application's detail calls, in the summary's words.
DETAIL_TEXT = {"forwarded": "forwarded to the vendor", "absorbed": "absorbed (no vendor call)"}


def _phase(job: Mapping[str, Any]) -> str:
    """What the simulator's job is, in the kind table's words ("?" for a status it lacks)."""
    try:
        return kinds.get(str(job.get("kind") or kinds.DEFAULT_KIND)).phase(job).value
    except (KeyError, ValueError):
        return "?"


def _secret_var(account: str) -> str:
    """The environment variable of an account's secret key (``DEMO_SECRET_KEY``: the default)."""
    middle = "" if account == DEFAULT_ACCOUNT else account.upper() + "_"
    return f"DEMO_{middle}SECRET_KEY"


def _payload_account(payload: Any) -> str | None:
    """The account a webhook's payload names (``data.account``), None when it names none."""
    data = payload.get("data") if isinstance(payload, dict) else None
    account = data.get("account") if isinstance(data, dict) else None
    return account if isinstance(account, str) else None


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def expected_callbacks(outcomes: dict[str, str]) -> dict[str, set[str]]:
    """Job ids each receiver path must get: ops all, analytics successes, Slack failures."""
    return {
        "/ops": set(outcomes),
        "/analytics": {j for j, o in outcomes.items() if o == OK},
        SLACK_PATH: {j for j, o in outcomes.items() if o == FAIL},
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


def _first_webhook(receiver: Receiver, job_id: str) -> float | None:
    """When the first accepted ops webhook about ``job_id`` came (wall clock), or None."""
    return min(
        (
            r.received_at
            for r in receiver.accepted("/ops")
            if _job_of(r.payload, [job_id]) == job_id
        ),
        default=None,
    )


async def _vendor_data(call: Awaitable[httpx.Response]) -> Any:
    """An application's view of a vendor call: the ``data`` of a code-0 envelope."""
    response = await call
    response.raise_for_status()
    body = response.json()
    if body.get("code") != 0:
        raise RuntimeError(f"{response.url.path}: code {body.get('code')} {body.get('msg')}")
    return body.get("data")


@dataclass
class GatewayRun:
    """What the demo, as the user's own application, saw of its job through the gateway."""

    #: Whether the daemon watched the job by the time the create's answer came back.
    watched_at_once: bool = False
    #: How the gateway served each detail call, in order: forwarded or absorbed.
    details: list[str] = field(default_factory=list)
    #: Why the application's calls stopped short (the demo then fails), or None.
    problem: str | None = None


def _detail_outcomes(daemon: Daemon) -> dict[str, float]:
    """The daemon's count of gateway detail calls per outcome (its own metric)."""
    counts: dict[str, float] = {}
    for family in daemon.metrics.gateway_calls.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("path") == DETAIL_PATH:
                counts[labels["outcome"]] = sample.value
    return counts


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
        #: Each account's secret key on the simulator (the config reads it from the environment).
        self.secret_keys = {name: secrets.token_hex(16) for name in ACCOUNTS}
        first, *others = ACCOUNTS.items()
        self.sim = VendorSimulator(
            SimConfig(
                app_id=first[1],
                secret_key=self.secret_keys[first[0]],
                accounts=tuple(
                    SimAccount(app_id, self.secret_keys[name], name=name) for name, app_id in others
                ),
            )
        )
        self.ops_secrets = [_whsec(), _whsec()]
        self.analytics_secret = _whsec()
        self.receiver = Receiver(
            {"/ops": self.ops_secrets[1:], "/analytics": [self.analytics_secret]}
        )
        # The analytics receiver fails each first attempt: watch the retry schedule work.
        self.receiver.script("/analytics", [503])
        self.outcomes: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.via: dict[str, str] = {}
        self.accounts: dict[str, str] = {}
        self.intake_token = secrets.token_hex(16)
        self.callback_token = secrets.token_hex(16)
        self.intake_port = _free_port()
        self.gateway_port = _free_port()
        self.gateway = GatewayRun()
        self._gateway_token = ""
        self.started = time.monotonic()

    @property
    def callback_url(self) -> str:
        """What a user gives the vendor as ``callback`` when creating a job."""
        return f"http://127.0.0.1:{self.intake_port}/v1/chanjing/callback/{self.callback_token}"

    def write_config(self, sim_url: str, receiver_url: str) -> Path:
        env = {
            **{_secret_var(name): key for name, key in self.secret_keys.items()},
            "DEMO_OPS_SECRET": self.ops_secrets[0],
            "DEMO_OPS_SECRET_NEW": self.ops_secrets[1],
            "DEMO_ANALYTICS_SECRET": self.analytics_secret,
            "DEMO_SLACK_URL": receiver_url + SLACK_PATH,
            "DEMO_INTAKE_TOKEN": self.intake_token,
            "DEMO_CALLBACK_TOKEN": self.callback_token,
        }
        os.environ.update(env)
        config = {
            "accounts": [
                {
                    "name": name,
                    "base_url": sim_url,
                    "app_id": app_id,
                    "secret_key": "${" + _secret_var(name) + "}",
                    "qps": 10,
                    **({"default": True} if name == DEFAULT_ACCOUNT else {}),
                }
                for name, app_id in ACCOUNTS.items()
            ],
            "state": {"path": str(self.workdir / "state.db")},
            "watch": {
                "file": str(self.workdir / "watch.yaml"),
                # Jobs created from now on become watches by themselves.
                "discover": {"since": "start", "labels": {"name": "found-later"}},
            },
            "intake": {
                "listen": f"127.0.0.1:{self.intake_port}",
                "tokens": ["${DEMO_INTAKE_TOKEN}"],
                "callback_token": "${DEMO_CALLBACK_TOKEN}",
                "labels": {"name": "cb-render"},
                # Creates through the gateway get the daemon's callback (the fast path).
                "public_url": f"http://127.0.0.1:{self.intake_port}",
            },
            "gateway": {"listen": f"127.0.0.1:{self.gateway_port}"},
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
                    "events": ["*.succeeded"],
                },
                {
                    "name": "team",
                    "type": "slack",
                    "url": "${DEMO_SLACK_URL}",
                    "events": ["*.failed"],
                },
            ],
        }
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _add(self, job: DemoJob, **extra: Any) -> str:
        job_id = self.sim.add_job(
            queue_s=job.queue_s,
            run_s=job.run_s,
            outcome=job.outcome,
            msg=job.msg,
            kind=job.kind,
            account=ACCOUNTS[job.account],
            **extra,
        )
        self._record(job, job_id)
        return job_id

    def _record(self, job: DemoJob, job_id: str) -> None:
        self.outcomes[job_id] = job.outcome
        self.kinds[job_id] = job.kind
        self.names[job_id] = job.name
        self.via[job_id] = job.via
        self.accounts[job_id] = job.account

    def ids_via(self, via: str) -> list[str]:
        return [j for j, v in self.via.items() if v == via]

    def create_jobs(self) -> None:
        """Every job but the one discovery is to find: dated before the daemon's state, so
        discovery leaves them alone; the callback job carries the daemon's callback URL."""
        old = int(time.time()) - OLD_JOB_AGE
        for job in JOBS:
            if job.via == "callback":
                self._add(job, create_time=old, callback=self.callback_url)
            elif job.via in ("file", "queue", "api"):
                self._add(job, create_time=old)
        (self.workdir / "watch.yaml").write_text(
            yaml.safe_dump([self._file_item(j) for j in self.ids_via("file")])
        )

    def _file_item(self, job_id: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": job_id, "labels": {"name": self.names[job_id]}}
        if self.kinds[job_id] != kinds.DEFAULT_KIND:
            item["kind"] = self.kinds[job_id]
        if self.accounts[job_id] != DEFAULT_ACCOUNT:
            item["account"] = self.accounts[job_id]
        return item

    def enqueue(self, daemon: Daemon) -> None:
        ids = self.ids_via("queue")
        daemon.store.enqueue(
            [WatchSpec(j, {"name": self.names[j]}, account=self.accounts[j]) for j in ids]
        )

    async def post_to_api(self, url: str) -> None:
        """As a backend on another host would: ``POST /v1/watches`` with a bearer token."""
        async with httpx.AsyncClient(timeout=10) as client:
            for job_id in self.ids_via("api"):
                response = await client.post(
                    url + "/v1/watches",
                    json={
                        "ids": [job_id],
                        "labels": {"name": self.names[job_id]},
                        "account": self.accounts[job_id],
                    },
                    headers={"Authorization": f"Bearer {self.intake_token}"},
                )
                response.raise_for_status()

    def create_discovered(self) -> None:
        """A job nobody registers: the daemon's list sweeps find it (created after its start)."""
        for job in JOBS:
            if job.via == "discovery":
                self._add(job)

    async def use_gateway(self, url: str, daemon: Daemon) -> None:
        """The user's own application, beside the other ways in: it creates its job through
        the gateway, then looks at it again when the daemon's webhook says it ended."""
        await self.create_through_gateway(url, daemon)
        await self.look_when_notified(url, daemon)

    async def create_through_gateway(self, url: str, daemon: Daemon) -> None:
        """As the user's own application would, its base URL changed to the gateway: a token
        with the account's credentials, a lip-sync create labelled for the daemon, and a
        first look at the job (not polled by the daemon yet, so forwarded)."""
        (job,) = [j for j in JOBS if j.via == "gateway"]
        async with httpx.AsyncClient(base_url=url, timeout=10) as app:
            token = await _vendor_data(
                app.post(
                    TOKEN_PATH,
                    json={"app_id": "demo-app", "secret_key": self.sim.config.secret_key},
                )
            )
            self._gateway_token = str(token["access_token"])
            hints = {"queue_s": job.queue_s, "run_s": job.run_s, "outcome": job.outcome}
            job_id = await _vendor_data(
                app.post(
                    CREATE_PATH,
                    # The simulator's timeline hints; a real create names video and audio.
                    json={"_sim": hints if job.msg is None else {**hints, "msg": job.msg}},
                    headers={
                        "access_token": self._gateway_token,
                        LABEL_HEADER: f"name={job.name}, via=gateway",
                    },
                )
            )
            self.gateway.watched_at_once = daemon.store.watch_summary(job_id) is not None
            self._record(job, str(job_id))
            await self._gateway_detail(app, str(job_id), daemon)

    async def look_when_notified(self, url: str, daemon: Daemon) -> None:
        """The application looks at its job again once the daemon's webhook said it ended:
        the daemon has seen the end, so the gateway answers from that, no vendor call."""
        (job_id,) = self.ids_via("gateway")
        await self.receiver.wait_for(
            lambda r: _first_webhook(r, job_id) is not None, timeout=DEADLINE
        )
        async with httpx.AsyncClient(base_url=url, timeout=10) as app:
            await self._gateway_detail(app, job_id, daemon)

    async def _gateway_detail(self, app: httpx.AsyncClient, job_id: str, daemon: Daemon) -> None:
        before = _detail_outcomes(daemon)
        await _vendor_data(
            app.get(
                DETAIL_PATH, params={"id": job_id}, headers={"access_token": self._gateway_token}
            )
        )
        after = _detail_outcomes(daemon)
        self.gateway.details += [o for o in after if after[o] > before.get(o, 0.0)][:1] or ["?"]

    def done(self) -> bool:
        if len(self.outcomes) < len(JOBS):
            return False  # the application has not created its job yet
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
        columns = ("job", "account", "via", "vendor", "progress", "watch")
        for column in (*columns, *ENDPOINT_NAMES.values()):
            table.add_column(column)
        for job_id, _outcome in self.outcomes.items():
            v = vendor.get(job_id, {})
            w = watches.get(job_id, {})
            status = _phase(v) if v else "queued"
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
                self.accounts[job_id],
                VIA_TEXT[self.via[job_id]],
                status,
                f"{v.get('progress', 0)}%",
                str(w.get("state", "not yet watched")),
                *cells,
            )
        return table

    def ways_in(self, daemon: Daemon) -> list[str]:
        """How the jobs that no file or queue named reached the daemon."""
        sources = {w["job_id"]: w["source"] for w in daemon.store.list_watches()}
        jobs = self.sim.stats()["jobs"]
        lines = []
        for job_id in self.ids_via("api"):
            account = self.accounts[job_id]
            named = "" if account == DEFAULT_ACCOUNT else f' with "account": "{account}"'
            lines.append(
                f"  HTTP API               {self.names[job_id]}: POST /v1/watches{named} → 202"
            )
        for job_id in self.ids_via("callback"):
            job = jobs.get(job_id, {})
            first = _first_webhook(self.receiver, job_id)
            sent = job.get("callback_sent_at")
            gap = f", webhook {first - sent:.2f} s later" if first and sent else ""
            lines.append(
                f"  vendor callback        {self.names[job_id]}: answered "
                f"{job.get('callback_result') or 'not sent'}{gap}"
            )
        for job_id in self.ids_via("discovery"):
            source = sources.get(job_id)
            found = "found by a list sweep" if source == "discovery" else f"source {source}"
            lines.append(f"  discovery              {self.names[job_id]}: {found}")
        return lines + self._gateway_story(jobs)

    def _gateway_story(self, jobs: dict[str, Any]) -> list[str]:
        """The application's job: watched when its create was answered? Its webhook, and
        how the gateway served the application's looks at it."""
        lines = []
        if self.gateway.problem is not None:
            lines.append(
                f"  gateway                the application's calls failed: {self.gateway.problem}"
            )
        for job_id in self.ids_via("gateway"):
            name = self.names[job_id]
            first = _first_webhook(self.receiver, job_id)
            ended = jobs.get(job_id, {}).get("completed_at")
            watched = (
                "watched at once"
                if self.gateway.watched_at_once
                else "not watched when its create was answered"
            )
            webhook = (
                f"webhook {first - ended:.2f} s after it finished"
                if first is not None and ended is not None
                else "no webhook"
            )
            story = f"created through the gateway, {watched}, {webhook}"
            lines.append(f"  gateway                {name}: {story}")
            looks = Counter(self.gateway.details).items()
            served = ", ".join(f"{n} {DETAIL_TEXT.get(how, how)}" for how, n in looks)
            lines.append(f"  gateway detail calls   {name}: {served or 'none'}")
        return lines

    def per_account(self, notified: set[str]) -> list[str]:
        """Each account's jobs notified (to ops, which gets every event), how many of their
        webhooks name the account (``data.account``), and the account's own vendor calls, as
        the simulator counted them for that account's app."""
        stats = self.sim.stats()["accounts"]
        said = [
            (self.accounts.get(str(_job_of(r.payload, self.outcomes))), _payload_account(r.payload))
            for r in self.receiver.accepted()
            if r.path != SLACK_PATH
        ]
        lines = []
        for name, app_id in ACCOUNTS.items():
            jobs = {j for j, account in self.accounts.items() if account == name}
            webhooks = [named for account, named in said if account == name]
            calls = stats[app_id]
            lines.append(
                f"  account {name:14} {len(jobs & notified)}/{len(jobs)} jobs notified "
                f"({webhooks.count(name)}/{len(webhooks)} webhooks name it), "
                f"{calls['calls']} vendor calls (max {calls['max_per_second']}/s of "
                f"{calls['qps']}, 40001: {calls['codes'].get('40001', 0)})"
            )
        return lines

    def summary(self, ok: bool, daemon: Daemon) -> list[str]:
        got = _arrived(self.receiver, self.outcomes)
        lines = self.ways_in(daemon)
        for path, want in expected_callbacks(self.outcomes).items():
            name = {"/ops": "ops (webhook)", "/analytics": "analytics (webhook)"}.get(
                path, "team (slack)"
            )
            lines.append(f"  {name:22} {len(want & got.get(path, set()))}/{len(want)} received")
        bad = sum(1 for r in self.receiver.all() if r.verified is False)
        lines.append(f"  signature failures     {bad}")
        lines += self.per_account(got.get("/ops", set()))
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
        demo.enqueue(daemon)
        intake_url, gateway_url = await _listening(daemon, runner)
        await demo.post_to_api(intake_url)
        demo.create_discovered()
        application = asyncio.create_task(demo.use_gateway(gateway_url, daemon))
        console.print(
            f"vendor simulator {sim_server.url} · receiver {rec_server.url} · "
            f"intake {intake_url} · gateway {gateway_url} · {len(JOBS)} jobs on "
            f"{len(ACCOUNTS)} accounts ({', '.join(ACCOUNTS)}) · "
            f"state {daemon.store.where}"
        )
        ok = False
        deadline = time.monotonic() + DEADLINE
        seen: set[str] = set()
        view = Live(demo.table(daemon), console=console, refresh_per_second=4) if live else None
        with view if view is not None else contextlib.nullcontext():
            while time.monotonic() < deadline and not runner.done():
                if application.done() and application.exception() is not None:
                    break  # raised below
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
        try:
            if ok or application.done():  # the webhook came: the application's look follows
                await asyncio.wait_for(application, 10)
        except Exception as exc:  # shown in the summary; the demo fails
            ok = False
            demo.gateway.problem = f"{type(exc).__name__}: {exc}"
        application.cancel()
        lines = demo.summary(ok, daemon)
        daemon.request_stop()
        await asyncio.wait_for(runner, 15)
        await rec_server.stop()
        await sim_server.stop()
        for line in lines:
            console.print(line)
        return 0 if ok else 1


def _free_port() -> int:
    """A port for a listener, known before the daemon starts: the callback URL is given to
    the vendor when a job is created, and ports go into the config."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _listening(daemon: Daemon, runner: asyncio.Task[int]) -> tuple[str, str]:
    """The intake listener's and the gateway's URLs once the daemon serves them."""
    deadline = time.monotonic() + 30
    while daemon.intake.url is None or daemon.gateway_listener.url is None:
        if runner.done() or time.monotonic() > deadline:
            raise RuntimeError("the daemon did not start its intake listener and gateway")
        await asyncio.sleep(0.05)
    return daemon.intake.url, daemon.gateway_listener.url


def _print_progress(console: Console, demo: Demo, seen: set[str]) -> None:
    """Non-interactive output: one line per new fact."""
    for job in demo.sim.jobs():
        phase = _phase(job)
        key = f"{job['id']}:{phase}"
        if job["id"] in demo.names and key not in seen:
            seen.add(key)
            account = demo.accounts[job["id"]]
            via = f" (via {VIA_TEXT[demo.via[job['id']]]}, account {account})"
            console.print(
                f"job {demo.names[job['id']]:13} {phase}{via if phase == 'queued' else ''}"
            )
    for record in demo.receiver.all():
        job_id = _job_of(record.payload, demo.outcomes) or "?"
        key = f"{record.path}:{job_id}:{record.attempt}"
        if key in seen:
            continue
        seen.add(key)
        verdict = {True: "signature verified", False: "SIGNATURE FAILED", None: "slack message"}
        account = demo.accounts.get(job_id, "?")
        said = _payload_account(record.payload)
        other = f", its payload names account {said}" if said not in (None, account) else ""
        console.print(
            f"callback {ENDPOINT_NAMES.get(record.path, record.path):9} "
            f"{demo.names.get(job_id, job_id):13} account {account:8} "
            f"attempt {record.attempt} → HTTP {record.status_returned} "
            f"({verdict[record.verified]}{other})"
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
