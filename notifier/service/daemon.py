"""`chanjing-notifier run`: wires sources → store → poller → vendor → dispatcher → senders.

APScheduler is the clock; the store is the truth. Every job below only looks at the store
and acts, so a restart (or a crash) resumes exactly where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from notifier import __version__
from notifier import log as logs
from notifier.config import Config, ConfigError, SlackEndpoint, WebhookEndpoint, load_config
from notifier.delivery.dispatcher import Dispatcher
from notifier.delivery.operational import OperationalEvents
from notifier.delivery.senders import Sender, SlackSender, WebhookSender
from notifier.delivery.senders._http import http_client
from notifier.gateway.door import Gateway
from notifier.intake.queue import take_queue
from notifier.intake.watchfile import WatchFile
from notifier.models import JobDetail
from notifier.polling.discovery import Discoverer, settings_from
from notifier.polling.fastpath import FastPath
from notifier.polling.lease import LeaseKeeper
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import RateLimiter
from notifier.polling.vendor import VendorClient
from notifier.service.clock import (
    CLOCK_CHECK_EVERY,
    ClockWatch,
    GatedLeaseStore,
    NodeClock,
    SkewGuard,
    SteadyInterval,
)
from notifier.service.gateway_listener import GatewayListener
from notifier.service.http_server import AppServer
from notifier.service.instance_lock import InstanceLock
from notifier.service.intake_listener import IntakeListener, ListenError
from notifier.service.metrics import Metrics, make_app
from notifier.service.sdnotify import SdNotifier
from notifier.service.settings import config_summary, polling_settings, subscriptions, thresholds
from notifier.service.store_outage import StoreOutage
from notifier.service.wakeups import Wakeups
from notifier.store import (
    DB_ERRORS,
    StoreUnavailable,
    describe_state,
    open_store,
    prepare_state_dir,
)
from notifier.store.base import PRUNE_BATCH

log = logs.get_logger(component="daemon")

#: How long in-flight vendor calls and deliveries may finish after SIGTERM.
STOP_GRACE = 5.0
POLL_TICK = 0.2
QUEUE_TICK = 1.0
WATCH_FILE_TICK = 2.0
DISPATCH_TICK = 1.0
HOUSEKEEPING_TICK = 30.0
STATUS_TICK = 5.0
#: An idle connection to the metrics listener is closed after this long.
METRICS_KEEPALIVE = 30.0
#: /healthz fails when the poll tick (every 0.2 s) has not run for this long.
HEALTH_STALE_AFTER = 5.0
#: A vendor client replaced by a reload is closed once its last calls surely ended.
OLD_CLIENT_CLOSE_DELAY = 30.0
#: How long a write on the event loop waits for another writer's lock before it is retried
#: later: a tick must not stall behind a big `watch add` or another program's transaction.
STORE_BUSY_TIMEOUT = 0.05
#: Retention prunes at most this many batches (of PRUNE_BATCH rows a kind) per housekeeping tick.
PRUNE_BATCHES_PER_TICK = 10
#: How long a lease renewal waits for another writer's lock (on the keeper's own thread and
#: connection: it never stalls the loop, and a renewal that fails only lets the lease run down).
LEASE_BUSY_TIMEOUT = 1.0
#: Jobs that write to the state: they pause while it cannot be written.
WRITING_JOBS = frozenset(
    {"poll", "poll_wakeup", "queue", "watch_file", "dispatch", "housekeeping", "sweep"}
)


class Daemon:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        self.sd = SdNotifier()
        node = config.state.node or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = Metrics(node)
        self.metrics_server: AppServer | None = None
        self.last_tick = time.monotonic()
        #: PostgreSQL: the shared schedule keeps the database's time; None on SQLite.
        self.skew: SkewGuard | None = None
        self._clock_task: asyncio.Task[None] | None = None
        if config.state.url is not None:
            store = open_store(config.state, busy_timeout=LEASE_BUSY_TIMEOUT)
            self.skew = SkewGuard(store, self._clock_pause)
        self.clock = NodeClock(
            self.skew,
            self._rearm,
            lambda delta: self.store.shift_schedule(delta),
            lambda: self.store_outage.check(),
        )
        self.clock_watch = self.clock.watch
        # The store stamps rows through the step check too: a row written with a stepped
        # clock before the next look would otherwise be moved by the step a second time.
        self.store = open_store(config.state, busy_timeout=STORE_BUSY_TIMEOUT, clock=self.now)
        self.store_outage = StoreOutage(self.store)
        # The keeper renews from a worker thread, on a connection (and wall clock) of its own.
        self.lease_store = open_store(config.state, busy_timeout=LEASE_BUSY_TIMEOUT)
        self.lease_gate = GatedLeaseStore(self.lease_store)
        # sole: run_daemon holds a SQLite file's instance lock, so no other daemon can run on
        # that state and a restart may take its dead predecessor's lease at once. A shared
        # PostgreSQL state has no such proof: there a restarted node waits the lease out.
        self.lease = LeaseKeeper(
            self.lease_gate, node, config.state.lease, sole=config.state.url is None
        )
        self.scheduler = AsyncIOScheduler()
        self.limiter = RateLimiter(config.chanjing.qps)
        self.vendor = self._make_vendor(config)
        self._senders: dict[tuple[Any, ...], tuple[Sender, httpx.AsyncClient]] = {}
        self.ops = OperationalEvents(
            self.store, subscriptions(config), thresholds(config), clock=self.now
        )
        self.dispatcher = Dispatcher(
            self.store,
            self._lanes(config),
            config.delivery.retry_schedule,
            observer=self.metrics.on_delivery,
            reporter=self.ops.on_result,
            clock=self.now,
            node=node,
            claim_observer=self.metrics.on_claims,
        )
        self.ops.on_recorded = self.dispatcher.kick
        self.poller = Poller(
            self.store,
            self.vendor,
            self.limiter,
            polling_settings(config),
            subscriptions(config),
            list_sweep=config.polling.list_sweep,
            discovery=self._discoverer(config),
            on_event=self.dispatcher.kick,
            clock=self.now,
        )
        # Several nodes on one database: each node's file is its own listing (issue 19, item 6).
        shared = config.state.url is not None
        self.watch_file = WatchFile(config.watch.file, node=node if shared else None)
        self.fast_path = FastPath(self.poller, outcomes=self.metrics.on_callback)
        self.intake = IntakeListener(
            self.store,
            self.metrics.on_intake_request,
            poll_now=self.fast_path.request,
            callback_observer=self.metrics.on_callback,
            verify=self.fast_path.verify,
        )
        self.lease.advertise = config.gateway.advertised()
        self.gateway = Gateway(
            self.store,
            lambda: self.vendor,
            observe=self._observe_forwarded,
            holder=lambda: self.lease.holder_advertise,
            refresh=self.poller.sweep_soon,
            clock=self.now,
        )
        self.gateway_listener = GatewayListener(self.gateway, self.metrics.on_gateway_call)
        self._stop = asyncio.Event()
        self.wakeups: Wakeups | None = None

    # -- construction from config ---------------------------------------------------------

    def _discoverer(self, config: Config) -> Discoverer | None:
        """Discovery as configured; a reload keeps the count of watches it made."""
        settings = settings_from(config, self.store)
        if settings is None:
            return None
        running: Poller | None = getattr(self, "poller", None)
        if running is not None and running.discovery is not None:
            running.discovery.settings = settings
            return running.discovery
        return Discoverer(self.store, settings)

    def _make_vendor(self, config: Config) -> VendorClient:
        c = config.chanjing
        client = VendorClient(
            base_url=c.base_url,
            app_id=c.app_id,
            secret_key=c.secret_key.get_secret_value(),
            limiter=self.limiter,
            store=self.store,
            lease=self.lease,
            verify=self._tls(),
            clock=self.now,
        )
        metrics = self.metrics

        def observe(endpoint: str, label: str, seconds: float) -> None:
            metrics.on_vendor_call(endpoint, label, seconds)
            try:
                self.ops.on_vendor_call(endpoint, label, seconds)
            except Exception:  # a vendor call must never fail for its alerting
                log.exception("cannot process a vendor answer for operational events")

        def revoked() -> None:
            metrics.on_token_revoked()
            try:
                self.ops.on_token_revoked()
            except Exception:  # as for observe: the call goes on whatever its alerting does
                log.exception("cannot process a token revocation for operational events")

        client.observer = observe
        client.on_token_revoked = revoked
        return client

    @staticmethod
    @functools.cache
    def _tls() -> ssl.SSLContext:
        """One TLS context (httpx's default: certifi's CA bundle, or SSL_CERT_FILE/DIR) for
        every client of the process: each context loads the bundle again (~60 ms of CPU),
        and the daemon makes one client per sender, at start and on each reload."""
        return httpx.create_ssl_context()

    @classmethod
    def _http_client(cls, connections: int) -> httpx.AsyncClient:
        """One connection pool per sender, sized to its lane: httpcore's pool costs grow
        with its size, and one endpoint's connections never wait behind another's."""
        return http_client(
            connections,
            verify=cls._tls(),
            headers={"user-agent": f"chanjing-notifier/{__version__}"},
        )

    def _lanes(self, config: Config) -> dict[str, tuple[Sender, int]]:
        """Senders per endpoint. A sender whose settings did not change is kept, and one
        Slack URL has one sender whichever endpoints use it: pacing is per URL."""
        lanes: dict[str, tuple[Sender, int]] = {}
        senders: dict[tuple[Any, ...], tuple[Sender, httpx.AsyncClient]] = {}
        previous = self._senders
        timeout = config.delivery.timeout
        for ep in config.endpoints:
            if isinstance(ep, WebhookEndpoint):
                secrets = [s.get_secret_value() for s in ep.secret]
                concurrency = config.delivery.concurrency
                key: tuple[Any, ...] = (
                    "webhook",
                    ep.name,
                    ep.url,
                    tuple(secrets),
                    timeout,
                    concurrency,
                )
                entry = senders.get(key) or previous.get(key)
                if entry is None:
                    client = self._http_client(concurrency)
                    # Signed on the schedule's clock (PostgreSQL: the database's).
                    sender = WebhookSender(client, ep.url, secrets, timeout, clock=self.now)
                    entry = (sender, client)
            else:
                assert isinstance(ep, SlackEndpoint)
                url = ep.url.get_secret_value()
                concurrency = 1  # paced to one message a second anyway
                key = ("slack", url, timeout)
                entry = senders.get(key) or previous.get(key)
                if entry is None:
                    client = self._http_client(1)
                    entry = (SlackSender(client, url, timeout), client)
            senders[key] = entry
            lanes[ep.name] = (entry[0], concurrency)
        self._senders = senders
        return lanes

    def _retire_clients(
        self, before: dict[tuple[Any, ...], tuple[Sender, httpx.AsyncClient]]
    ) -> None:
        """Close the pools of senders a reload dropped, once their last attempts ended."""
        kept = {id(client) for _sender, client in self._senders.values()}
        for _sender, client in before.values():
            if id(client) not in kept:
                self._close_later(client.aclose)

    @staticmethod
    def _close_later(close: Callable[[], Any]) -> None:
        asyncio.get_running_loop().call_later(
            OLD_CLIENT_CLOSE_DELAY, lambda: asyncio.ensure_future(close())
        )

    def _observe_forwarded(self, detail: JobDetail) -> None:
        """A detail answer the gateway forwarded for an active watch is that watch's poll."""
        summary = self.store.watch_summary(detail.id)
        watch = self.store.get_watch(detail.id) if summary is not None else None
        if summary is not None and summary["state"] == "active" and watch is not None:
            self.poller.observe(watch, detail)

    # -- scheduled jobs -------------------------------------------------------------------

    async def _take_queue(self) -> None:
        if self.gateway.pending:
            self.gateway.flush()
        if self.intake.callback.held:  # callbacks the state could not take when they came
            self.intake.callback.flush()
        result = take_queue(self.store, self.config.endpoint_names())
        if result.added or result.updated:
            log.info("watches taken from the queue", added=result.added, updated=result.updated)
        for seq, reason in result.rejected:
            log.error(
                "queue row rejected; kept in watch_queue with the reason", seq=seq, reason=reason
            )
        if result.added:
            await self.poller.tick()

    async def _check_watch_file(self, force: bool = False) -> None:
        result = self.watch_file.poll(self.store, self.config.endpoint_names(), force=force)
        if result is None:
            return
        if "error" in result:
            log.error(
                "watch file is invalid; keeping the previous watches",
                file=str(self.watch_file.path),
                problems=result["error"].splitlines(),
            )
        else:
            log.info("watch file loaded", file=str(self.watch_file.path), **result)
            if result["added"]:
                await self.poller.tick()

    async def _housekeeping(self) -> None:
        # A forward step not yet noticed would make every watch look older than it is.
        self.clock.check()
        await self.poller.expire()
        await self._prune()

    async def _prune(self) -> None:
        """``state.retention``: a few batches per tick, yielding to the loop between them."""
        retention = self.config.state.retention
        if not retention:
            return
        pruned: dict[str, int] = {}
        for _ in range(PRUNE_BATCHES_PER_TICK):
            done = self.store.prune(self.now() - retention)
            for kind, count in done.items():
                pruned[kind] = pruned.get(kind, 0) + count
            if max(done.values()) < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
        if any(pruned.values()):
            log.info("pruned history older than state.retention", retention=retention, **pruned)

    def _watch_clock(self) -> None:
        """Every second on the loop's own (monotonic) timer: APScheduler's jobs are on the
        wall clock, so this one must not be."""
        self.clock.check()
        if not self._stop.is_set():
            asyncio.get_running_loop().call_later(CLOCK_CHECK_EVERY, self._watch_clock)

    def now(self) -> float:
        """The time of every decision and row (see :class:`NodeClock`)."""
        return self.clock.now()

    def _rearm(self) -> None:
        # APScheduler would otherwise wait out a backward step before any tick runs again.
        now = datetime.now().astimezone()
        for job in self.scheduler.get_jobs():
            job.modify(next_run_time=now)

    def _clock_pause(self, reason: str | None) -> None:
        """Hold back (or let go again) what this node sends and calls; its renewals fail,
        so its vendor lease lapses to a node whose clock agrees."""
        self.lease.paused = self.lease_gate.refusal = reason
        resumed = self.dispatcher.paused is not None and reason is None
        self.dispatcher.paused = reason
        if resumed:
            self.dispatcher.kick()

    async def _poll_tick(self) -> None:
        await self.poller.tick()

    def status_text(self) -> str:
        try:
            active, pending = self.store.live_counts()
        except DB_ERRORS as exc:
            # The state went away between two looks (sent at ready and after a reload too):
            # say so; the outage itself is handled by the jobs, which pause and resume.
            self.store_outage.check()
            return f"cannot read the state {self.store.where}: {exc}; {self.lease.describe()}"
        text = f"watching {active} job(s), {pending} delivery(ies) pending; {self.lease.describe()}"
        cause = self.store_outage.cause
        if cause is not None:
            return f"PAUSED: cannot write {self.store.where}: {cause}; {text}"
        if self.skew is not None and self.skew.off is not None:
            return f"PAUSED: {self.skew.off}; {text}"
        return text

    async def _status(self) -> None:
        self.sd.status(self.status_text())

    async def _watchdog(self) -> None:
        # Sent from the event loop: a stuck loop stops the pings and systemd restarts us.
        self.sd.watchdog()

    def health(self) -> tuple[bool, str]:
        if self.store_outage.cause is None and not self.store_outage.writable_lately():
            self.store_outage.check()
        cause = self.store_outage.cause
        if cause is not None:
            return False, f"state database {self.store.where} cannot be written: {cause}"
        if self.skew is not None and self.skew.off is not None:
            return False, f"{self.skew.off}: not sending or calling the vendor; fix its time"
        stale = time.monotonic() - self.last_tick
        if stale > HEALTH_STALE_AFTER:
            return False, f"scheduler stalled: no tick for {stale:.1f}s"
        if self.vendor.credentials_problem is not None:
            # Degraded, not dead: nothing can be polled until the operator fixes the config.
            return False, (
                f"{self.vendor.credentials_problem}; check chanjing.app_id / chanjing.secret_key"
            )
        # A standby is healthy: it delivers, and takes over when the holder goes.
        return True, f"ok; {self.lease.describe()}"

    def _snapshot(self) -> dict[str, Any]:
        """Stored numbers for a scrape. Runs on a worker thread (counting a long history takes
        a while), so it reads through a connection of its own and touches nothing else."""
        with self.store.reopen() as reader:
            watches = reader.watch_counts()
            deliveries = reader.delivery_counts_by_endpoint()
        return {"watches": watches, "deliveries": deliveries}

    def _live_numbers(self) -> dict[str, Any]:
        """What the event loop owns, read on the loop before a scrape renders."""
        return {
            "budget_in_use": self.limiter.in_use(),
            "qps": self.limiter.qps,
            "polls_in_flight": self.poller.in_flight,
            "results_unrecorded": self.dispatcher.unrecorded,
            "state_writable": 0 if self.store_outage.cause else 1,
            "sweep": self.poller.sweep_state(),
            "endpoints_failing": {
                name: int(name in self.ops.state.failing_endpoints())
                for name in self.config.endpoint_names()
            },
            "vendor_failing": int(self.ops.state.vendor.failing),
            "gateway_pending": len(self.gateway.pending),
            "clock_skew": None if self.skew is None else self.skew.clock.skew,
            "lease": {
                "node": self.lease.node,
                "held": int(self.lease.may_call()),
                "seconds_left": self.lease.remaining(),
                "changes": dict(self.lease.changes),
                "withheld": self.lease.withheld,
            },
        }

    async def _apply_metrics(self, config: Config) -> None:
        """Start, move or stop the metrics listener to match ``metrics.listen``."""
        address = config.metrics.address()
        current = (
            (self.metrics_server.host, self.metrics_server.requested_port)
            if self.metrics_server
            else None
        )
        if address == current:
            return
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            self.metrics_server = None
        if address is None:
            return
        # Scrapers keep their connection between scrapes; an idle one is closed after this
        # (aiohttp's own default kept them an hour).
        server = AppServer(
            make_app(self.metrics, self.health),
            address[0],
            address[1],
            keepalive_timeout=METRICS_KEEPALIVE,
        )
        try:
            await server.start()
        except OSError as exc:
            log.error("cannot listen for metrics", listen=config.metrics.listen, error=str(exc))
            return
        self.metrics_server = server
        log.info("metrics listening", url=f"{server.url}/metrics", health=f"{server.url}/healthz")

    def _guarded(self, name: str, job: Callable[[], Any]) -> Callable[[], Any]:
        """A scheduled job that logs its failures instead of losing them in APScheduler."""

        writes = name in WRITING_JOBS

        async def run() -> None:
            if name == "poll":
                # /healthz: the poll tick runs (a paused one too: the store outage is
                # reported as such, not as a stalled loop).
                self.last_tick = time.monotonic()
            if writes and not self.store_outage.check():
                return  # its results could not be recorded: wait for the store
            try:
                await job()
            except asyncio.CancelledError:
                return  # stopping: the job is cut short, nothing to report
            except StoreUnavailable:
                self.store_outage.check()
            except Exception:
                log.exception("scheduled job failed; it runs again at its next tick", job=name)

        run.__name__ = name
        return run

    def _schedule(self) -> None:
        now = datetime.now().astimezone()
        jobs: list[tuple[str, Callable[[], Any], float]] = [
            ("poll", self._poll_tick, POLL_TICK),
            ("queue", self._take_queue, QUEUE_TICK),
            ("watch_file", self._check_watch_file, WATCH_FILE_TICK),
            ("dispatch", self.dispatcher.tick, DISPATCH_TICK),
            ("housekeeping", self._housekeeping, HOUSEKEEPING_TICK),
            ("status", self._status, STATUS_TICK),
        ]
        jobs.append(("sweep", self.poller.sweep, self.config.polling.min_interval))
        if self.sd.watchdog_interval:
            jobs.append(("watchdog", self._watchdog, self.sd.watchdog_interval))
        for name, job, seconds in jobs:
            self.scheduler.add_job(
                self._guarded(name, job),
                SteadyInterval(seconds=seconds),
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
            )

    # -- lifecycle ------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return self.config.secrets() + self.vendor.secrets()

    async def reload(self) -> bool:
        """SIGHUP: re-read config and watch file; a broken config keeps the running one."""
        self.sd.reloading()
        log.info("reloading", config=self.config_path)
        try:
            return await self._reload()
        finally:
            self.sd.ready(self.status_text())

    async def _reload(self) -> bool:
        if self.config_path is None:
            await self._check_watch_file(force=True)
            return True
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("new config is invalid; keeping the running one", problems=exc.problems)
            await self._check_watch_file(force=True)
            return False
        old = self.config
        if (new.state.url, new.state.path) != (old.state.url, old.state.path):
            files = new.state.url is None and old.state.url is None
            key = "state.path" if files else "state.url"
            log.warning(
                f"{key} changed; the running daemon keeps its state until a restart",
                running=describe_state(old.state),
                configured=describe_state(new.state),
                hint="restart the daemon; until then CLI commands read the configured state, "
                "not the running one",
            )
            # Everything below (and the `reloaded` line) reports what really runs.
            new = new.model_copy(update={"state": old.state})
        if new.state.node != old.state.node:
            log.warning(
                "state.node changed; the running daemon keeps its name until a restart",
                running=self.lease.node,
                configured=new.state.node,
            )
            state = new.state.model_copy(update={"node": old.state.node})
            new = new.model_copy(update={"state": state})
        self.lease.ttl = new.state.lease  # from the next renewal on
        logs.redactor.add(new.secrets())
        logs.configure(new.log.level)
        self.config = new
        self.limiter.reconfigure(new.chanjing.qps)
        if new.chanjing.model_copy(update={"qps": 0}) != old.chanjing.model_copy(update={"qps": 0}):
            old_vendor = self.vendor
            self.vendor = self._make_vendor(new)
            self.poller.vendor = self.vendor
            self._close_later(old_vendor.aclose)
        self.poller.settings = polling_settings(new)
        self.poller.list_sweep = new.polling.list_sweep
        self.poller.discovery = self._discoverer(new)
        if new.polling.min_interval != old.polling.min_interval:
            self.scheduler.reschedule_job(
                "sweep", trigger=SteadyInterval(seconds=new.polling.min_interval)
            )
        self.poller.subscriptions = subscriptions(new)
        self.ops.configure(subscriptions(new), thresholds(new))
        before = self._senders
        self.dispatcher.configure(self._lanes(new), new.delivery.retry_schedule)
        self._retire_clients(before)
        self.watch_file.path = new.watch.file
        await self._apply_metrics(new)
        try:
            await self.intake.apply(new.intake, new.endpoint_names())
        except ListenError as exc:
            log.error("intake.listen: the new address is not used", error=str(exc))
        self.lease.advertise = new.gateway.advertised()
        try:
            await self.gateway_listener.apply(new)
        except ListenError as exc:
            log.error("gateway.listen: the new address is not used", error=str(exc))
        logs.redactor.replace(self._secrets() + old.secrets())
        await self._check_watch_file(force=True)
        for warning in new.warnings():
            log.warning(warning)
        log.info("reloaded", **config_summary(new, self.config_path))
        return True

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        logs.redactor.add(self._secrets())
        log.info("starting", node=self.lease.node, **config_summary(self.config, self.config_path))
        for warning in self.config.warnings():
            log.warning(warning)
        key = "intake.listen"
        try:
            await self.intake.apply(self.config.intake, self.config.endpoint_names())
            key = "gateway.listen"
            await self.gateway_listener.apply(self.config)
        except ListenError as exc:
            log.error(f"cannot start: {key}", error=str(exc))
            await self.intake.stop()
            await self.gateway_listener.stop()
            await self.vendor.aclose()
            self.store.close()
            self.lease_store.close()
            return 1
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self.metrics.watch_state(self._snapshot, self._live_numbers)
        await self._apply_metrics(self.config)
        if self.skew is not None:
            # A node starting with its clock off takes no lease and claims no delivery.
            self.skew.judge(self.skew.clock.skew)
        # Before the first tick: a lone daemon polls from its first tick on.
        await self.lease.start()
        self._release_orphan_claims()
        self._schedule()
        self.scheduler.start()
        self._listen()
        self._watch_clock()
        if self.skew is not None:
            self._clock_task = asyncio.create_task(self.skew.keep(self._stop), name="db clock")
        try:
            counts: tuple[int | None, int | None] = self.store.live_counts()
        except DB_ERRORS:  # gone since the start-up writes: the jobs pause and report it
            counts = (None, None)
        log.info("ready", watching=counts[0], deliveries_pending=counts[1])
        self.sd.ready(self.status_text())
        await self._stop.wait()
        return await self._shutdown()

    def _release_orphan_claims(self) -> None:
        """SQLite: this daemon holds the file's instance lock, so a claim in it is a dead
        predecessor's (``kill -9`` mid-attempt): send those deliveries again now rather than
        when the claims lapse. A shared PostgreSQL state waits them out (a claim may be a
        live node's)."""
        if self.config.state.url is not None:
            return
        try:
            released = self.store.release_every_claim()
        except StoreUnavailable:
            return  # they lapse as on PostgreSQL; the outage is reported by the ticks
        if released:
            log.info("claims of a previous run released; those deliveries go again", count=released)

    def _listen(self) -> None:
        """PostgreSQL: what other nodes and programs write runs its job at once."""
        feed = self.store.change_feed()
        if feed is None:
            return
        actions = {
            "queue": self._guarded("queue", self._take_queue),
            "watch": self._guarded("poll_wakeup", self.poller.tick),
            "delivery": self.dispatcher.kick,
        }
        self.wakeups = Wakeups(
            feed, actions, own=self.store.session_id, observer=self.metrics.on_wakeup
        )
        self.wakeups.start()

    async def _shutdown(self) -> int:
        started = time.monotonic()
        self.sd.stopping()
        log.info("stopping", grace=STOP_GRACE)
        self.lease.close()  # no vendor call leaves from now on
        self.scheduler.shutdown(wait=False)
        await self.intake.stop()
        await self.gateway_listener.stop()
        if self.wakeups is not None:
            await self.wakeups.close()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await asyncio.gather(
            self.poller.drain(STOP_GRACE),
            self.fast_path.drain(STOP_GRACE),
            self.dispatcher.drain(STOP_GRACE),
        )
        await self.lease.release()  # after the last calls: another node may take over
        await self.vendor.aclose()
        for _sender, client in self._senders.values():
            await client.aclose()
        if self._clock_task is not None:  # it waits on the stop, or for one sample
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._clock_task, STOP_GRACE)
        self.store.close()
        self.lease_store.close()
        if self.skew is not None:
            self.skew.store.close()
        self.sd.close()
        log.info("stopped", took=round(time.monotonic() - started, 2))
        return 0


def run_daemon(config: Config, config_path: str | None) -> int:
    """Run until SIGTERM/SIGINT; the exit code for the CLI. Raises AlreadyRunning when
    another daemon holds the state file."""

    async def main() -> int:
        daemon = Daemon(config, config_path)
        return await daemon.run()

    if config.state.url is not None:
        # Several nodes may share a PostgreSQL state: no file, no lock.
        return asyncio.run(main())
    prepare_state_dir(config.state.path)  # only the default directory is created
    with InstanceLock(config.state.path):
        return asyncio.run(main())


__all__ = ["ClockWatch", "Daemon", "StoreOutage", "run_daemon"]
