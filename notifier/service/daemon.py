"""`chanjing-notifier run`: wires sources → store → poller → vendor → dispatcher → senders.

APScheduler is the clock; the store is the truth. Every job below only looks at the store
and acts, so a restart (or a crash) resumes exactly where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from notifier import log as logs
from notifier.config import Config, ConfigError, load_config
from notifier.delivery.dispatcher import Dispatcher
from notifier.delivery.operational import OperationalEvents
from notifier.gateway.door import Gateway
from notifier.intake.callback import Admit
from notifier.intake.queue import take_queue
from notifier.intake.watchfile import WatchFile
from notifier.polling.lease import make_owner
from notifier.polling.spread import LeaseSpread
from notifier.polling.vendor import VendorClient, VendorSettings
from notifier.service.clients import SenderPool, shared_tls
from notifier.service.clock import (
    ClockWatch,
    GatedLeaseStore,
    NodeClock,
    SkewGuard,
    SteadyInterval,
    rearm,
)
from notifier.service.gateway_listener import GatewayListener
from notifier.service.health import Health
from notifier.service.http_server import AppServer
from notifier.service.instance_lock import InstanceLock
from notifier.service.intake_listener import IntakeListener
from notifier.service.lane import Lane, LaneSettings
from notifier.service.listener import Listener, ListenError, ListenSettings
from notifier.service.metrics import Metrics, make_app
from notifier.service.sdnotify import SdNotifier
from notifier.service.settings import Settings, build, config_summary
from notifier.service.state_settings import state_settings
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
from notifier.watchspec import AccountRule

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
#: How long a write on the event loop waits for another writer's lock before it is retried
#: later: a tick must not stall behind a big `watch add` or another program's transaction.
STORE_BUSY_TIMEOUT = 0.05
#: Retention prunes at most this many batches (of PRUNE_BATCH rows a kind) per housekeeping tick.
PRUNE_BATCHES_PER_TICK = 10
#: How long a lease renewal waits for another writer's lock (on the keeper's own thread and
#: connection: it never stalls the loop, and a renewal that fails only lets the lease run down).
LEASE_BUSY_TIMEOUT = 1.0
#: How often a node looks at how the accounts' leases are spread over the nodes.
SPREAD_EVERY = 1.0
#: Jobs that write to the state: they pause while it cannot be written.
WRITING_JOBS = frozenset(
    {"poll", "poll_wakeup", "queue", "watch_file", "dispatch", "housekeeping", "sweep"}
)


class Daemon:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        settings = self.settings = build(config)
        self.sd = SdNotifier()
        node = config.state.node or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = Metrics(node)
        self.metrics_listener = Listener(self._metrics_server, "metrics listener", fallback=False)
        #: PostgreSQL: the shared schedule keeps the database's time; None on SQLite.
        self.skew: SkewGuard | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._spread_task: asyncio.Task[None] | None = None
        if settings.state.shared:
            store = open_store(settings.state, busy_timeout=LEASE_BUSY_TIMEOUT)
            self.skew = SkewGuard(store, self._clock_pause)
        self.clock = NodeClock(
            self.skew,
            lambda: rearm(self.scheduler),
            lambda delta: self.store.shift_schedule(delta),
            lambda: self.store_outage.check(),
        )
        self.clock_watch = self.clock.watch
        # The store stamps rows through the step check too: a row written with a stepped
        # clock before the next look would otherwise be moved by the step a second time.
        self.store = open_store(settings.state, busy_timeout=STORE_BUSY_TIMEOUT, clock=self.now)
        self.store_outage = StoreOutage(self.store)
        # The keeper renews from a worker thread, on a connection (and wall clock) of its own.
        self.lease_store = open_store(settings.state, busy_timeout=LEASE_BUSY_TIMEOUT)
        self.lease_gate = GatedLeaseStore(self.lease_store)
        # Several nodes on one PostgreSQL state (a SQLite file has one daemon).
        shared = settings.state.shared
        # sole: run_daemon holds a SQLite file's instance lock, so no other daemon can run on
        # that state and a restart may take its dead predecessor's lease at once. A shared
        # PostgreSQL state has no such proof: there a restarted node waits the lease out.
        self._sole = not shared
        self.scheduler = AsyncIOScheduler()
        self.senders = SenderPool(clock=self.now)
        self.ops = OperationalEvents(self.store, settings.alerts, clock=self.now)
        self.dispatcher = Dispatcher(
            self.store,
            settings.dispatcher,
            self.senders.lanes,
            observer=self.metrics.on_delivery,
            reporter=self.ops.on_result,
            clock=self.now,
            node=node,
            claim_observer=self.metrics.on_claims,
        )
        self.ops.on_recorded = self.dispatcher.kick
        self.node = node
        #: What the lanes' lease keepers share: the rows' owner, the lease connection's lock.
        self.lease_owner = make_owner(node)
        self._lease_db = asyncio.Lock()
        #: One lane per vendor account, by name.
        self.lanes: dict[str, Lane] = {}
        #: Several accounts on several nodes: each account's lease spread over the nodes.
        self.spread = LeaseSpread(
            self.lease_gate,
            lambda: [lane.lease for lane in self.lanes.values()],
            owner=self.lease_owner,
            db=self._lease_db,
            every=SPREAD_EVERY,
        )
        for lane_settings in settings.lanes:
            self._add_lane(lane_settings)
        #: The first account's lane: it keeps the node's presence row, so a reload cannot
        #: remove it.
        self.lane = self.lanes[settings.lanes[0].name]
        # Several nodes on one database: each node's file is its own listing (issue 19, item 6).
        self.watch_file = WatchFile(settings.watch_file, node=node if shared else None)
        self.intake = IntakeListener(
            self.store,
            self.metrics.on_intake_request,
            poll_now=self._callback_poll,
            callback_observer=self.metrics.on_callback,
            verify=self._callback_verify,
        )
        # Each call as the account its token was issued for, through that account's lane.
        self.gateway = Gateway(self.store, self.lanes, clock=self.now)
        self.gateway_listener = GatewayListener(self.gateway, self.metrics.on_gateway_call)
        self.health_report = Health(
            self.store,
            self.store_outage,
            lambda: {name: (lane.lease, lane.vendor) for name, lane in self.lanes.items()},
            self.skew,
            self.ops,
        )
        self._stop = asyncio.Event()
        self.wakeups: Wakeups | None = None

    # -- construction from settings -------------------------------------------------------

    def _add_lane(self, settings: LaneSettings) -> Lane:
        lane = Lane(
            settings,
            store=self.store,
            lease_store=self.lease_gate,
            node=self.node,
            owner=self.lease_owner,
            presence=not self.lanes,  # the first lane's keeper keeps the presence row
            db=self._lease_db,
            sole=self._sole,
            make_vendor=self._make_vendor,
            on_event=self.dispatcher.kick,
            outcomes=self.metrics.on_callback,
            clock=self.now,
        )
        self.lanes[lane.name] = lane
        self.metrics.account(lane.name)
        self.spread.attach(lane.lease)
        return lane

    @property
    def metrics_server(self) -> AppServer | None:
        return self.metrics_listener.server

    def _make_vendor(self, lane: Lane, settings: VendorSettings) -> VendorClient:
        client = VendorClient(
            settings,
            limiter=lane.limiter,
            store=self.store,
            lease=lane.lease,
            verify=shared_tls(),
            clock=self.now,
        )
        metrics = self.metrics

        def observe(endpoint: str, label: str, seconds: float) -> None:
            metrics.on_vendor_call(lane.name, endpoint, label, seconds)
            try:
                self.ops.on_vendor_call(lane.name, endpoint, label, seconds)
            except Exception:  # a vendor call must never fail for its alerting
                log.exception("cannot process a vendor answer for operational events")

        def revoked() -> None:
            metrics.on_token_revoked(lane.name)
            try:
                self.ops.on_token_revoked(lane.name)
            except Exception:  # as for observe: the call goes on whatever its alerting does
                log.exception("cannot process a token revocation for operational events")

        client.observer = observe
        client.on_token_revoked = revoked
        return client

    def _metrics_server(self, address: tuple[str, int], _options: object) -> AppServer:
        # Scrapers keep their connection between scrapes; an idle one is closed after this
        # (aiohttp's own default kept them an hour).
        app = make_app(self.metrics, self.health)
        return AppServer(app, address[0], address[1], keepalive_timeout=METRICS_KEEPALIVE)

    async def _configure_metrics(self, listen: ListenSettings) -> None:
        """Start, move or stop the metrics listener to match ``metrics.listen``; an address
        that cannot be bound leaves it off (:class:`ListenError`)."""
        if await self.metrics_listener.bind(listen):
            url = self.metrics_listener.url
            log.info("metrics listening", url=f"{url}/metrics", health=f"{url}/healthz")

    async def _listen_on(self, settings: Settings) -> None:
        """Every listener to its configured address; the first one that cannot be bound
        raises :class:`ListenError` (its key names it)."""
        await self.intake.configure(settings.intake)
        await self.gateway_listener.configure(settings.gateway)
        await self._configure_metrics(settings.metrics)

    # -- scheduled jobs -------------------------------------------------------------------

    async def _take_queue(self) -> None:
        if self.gateway.pending:
            self.gateway.flush()
        if self.intake.callback.held:  # callbacks the state could not take when they came
            self.intake.callback.flush()
        result = take_queue(self.store, self.settings.endpoint_names, self._account_rule())
        if result.added or result.updated:
            log.info("watches taken from the queue", added=result.added, updated=result.updated)
        for seq, reason in result.rejected:
            log.error(
                "queue row rejected; kept in watch_queue with the reason", seq=seq, reason=reason
            )
        if result.added:
            await self._poll_tick()

    def _callback_poll(self, job_id: str, kind: str, account: str) -> str:
        """A callback's poll, by its account's lane (the route names the account). No lane
        yet (a reload on its way): made due, for that lane to poll once it runs."""
        lane = self.lanes.get(account)
        if lane is None:
            return "due" if self.store.make_due(job_id, kind=kind, account=account) else "finished"
        return lane.fast_path.request(job_id, kind)

    def _callback_verify(self, job_id: str, kind: str, account: str, admit: Admit) -> str:
        """A new id's check, by its account's lane; no lane yet: watched unverified (its
        lane polls it in turn, and a 40000 rejects it)."""
        lane = self.lanes.get(account)
        if lane is None:
            admit(job_id)
            return "pending"
        return lane.fast_path.verify(job_id, kind, admit)

    def _account_rule(self) -> AccountRule:
        """The accounts a queue row or a watch file item may name (the lanes'), and the
        one it gets when it names none."""
        names = [lane.name for lane in self.settings.lanes]
        return AccountRule.of(names, self.settings.default_account)

    async def _check_watch_file(self, force: bool = False) -> None:
        result = self.watch_file.poll(
            self.store, self.settings.endpoint_names, force=force, accounts=self._account_rule()
        )
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
                await self._poll_tick()

    async def _housekeeping(self) -> None:
        # A forward step not yet noticed would make every watch look older than it is.
        self.clock.check()
        for lane in self.lanes.values():
            await lane.poller.expire()
        await self._prune()

    async def _prune(self) -> None:
        """``state.retention``: a few batches per tick, yielding to the loop between them."""
        retention = self.settings.retention
        if retention is None:
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

    def now(self) -> float:
        """The time of every decision and row (see :class:`NodeClock`)."""
        return self.clock.now()

    def _clock_pause(self, reason: str | None) -> None:
        """Hold back (or let go again) what this node sends and calls; its renewals fail,
        so its vendor lease lapses to a node whose clock agrees."""
        self.lease_gate.refusal = reason
        for lane in self.lanes.values():
            lane.lease.paused = reason
        resumed = self.dispatcher.paused is not None and reason is None
        self.dispatcher.paused = reason
        if resumed:
            self.dispatcher.kick()

    async def _poll_tick(self) -> None:
        for lane in self.lanes.values():
            await lane.poller.tick()

    async def _sweep(self) -> None:
        """Each lane's sweeps, side by side: each account's pages queue at its own limiter."""
        await asyncio.gather(*(lane.poller.sweep() for lane in self.lanes.values()))

    def status_text(self) -> str:
        return self.health_report.status_text()

    async def _status(self) -> None:
        self.sd.status(self.status_text())

    async def _watchdog(self) -> None:
        # Sent from the event loop: a stuck loop stops the pings and systemd restarts us.
        self.sd.watchdog()

    def health(self) -> tuple[bool, str]:
        return self.health_report.health()

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
            "lanes": {
                name: {
                    "budget_in_use": lane.limiter.in_use(),
                    "qps": lane.limiter.qps,
                    "polls_in_flight": lane.poller.in_flight,
                }
                for name, lane in self.lanes.items()
            },
            "results_unrecorded": self.dispatcher.unrecorded,
            "state_writable": 0 if self.store_outage.cause else 1,
            "sweep": {name: lane.poller.sweep_state() for name, lane in self.lanes.items()},
            "endpoints_failing": {
                name: int(name in self.ops.state.failing_endpoints())
                for name in self.settings.endpoint_names
            },
            "vendor_failing": {
                name: int(self.ops.state.vendor(name).failing) for name in self.lanes
            },
            "gateway_pending": len(self.gateway.pending),
            "clock_skew": None if self.skew is None else self.skew.clock.skew,
            "leases": {
                name: {
                    "node": lane.lease.node,
                    "held": int(lane.lease.may_call()),
                    "seconds_left": lane.lease.remaining(),
                    "changes": dict(lane.lease.changes),
                    "withheld": lane.lease.withheld,
                }
                for name, lane in self.lanes.items()
            },
        }

    def _guarded(self, name: str, job: Callable[[], Any]) -> Callable[[], Any]:
        """A scheduled job that logs its failures instead of losing them in APScheduler."""

        writes = name in WRITING_JOBS

        async def run() -> None:
            if name == "poll":
                # /healthz: the poll tick runs (a paused one too: the store outage is
                # reported as such, not as a stalled loop).
                self.health_report.tick()
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
        jobs.append(("sweep", self._sweep, self.settings.sweep_every))
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
        return self.config.secrets() + [
            secret for lane in self.lanes.values() for secret in lane.vendor.secrets()
        ]

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
        running, configured = self.settings.state, state_settings(new)
        if configured != running:
            key = "state.url" if running.shared or configured.shared else "state.path"
            log.warning(
                f"{key} changed; the running daemon keeps its state until a restart",
                running=describe_state(running),
                configured=describe_state(configured),
                hint="restart the daemon; until then CLI commands read the configured state, "
                "not the running one",
            )
            # Everything below (and the `reloaded` line) reports what really runs.
            new = new.model_copy(update={"state": old.state})
        if new.state.node != old.state.node:
            log.warning(
                "state.node changed; the running daemon keeps its name until a restart",
                running=self.node,
                configured=new.state.node,
            )
            state = new.state.model_copy(update={"node": old.state.node})
            new = new.model_copy(update={"state": state})
        logs.redactor.add(new.secrets())
        logs.configure(new.log.level)
        self.config = new
        await self._configure(build(new))
        logs.redactor.replace(self._secrets() + old.secrets())
        await self._check_watch_file(force=True)
        for warning in new.warnings():
            log.warning(warning)
        log.info("reloaded", **config_summary(new, self.config_path))
        return True

    async def _configure(self, settings: Settings) -> None:
        """A reload: each part takes its new settings (what cannot change while running, the
        state and the node's name, was kept above). A listener whose new address cannot be
        bound says so; the others carry on."""
        old, self.settings = self.settings, settings
        await self._configure_lanes(settings.lanes)
        if settings.sweep_every != old.sweep_every:
            self.scheduler.reschedule_job(
                "sweep", trigger=SteadyInterval(seconds=settings.sweep_every)
            )
        self.ops.configure(settings.alerts)
        self.dispatcher.configure(settings.dispatcher)
        self.watch_file.configure(settings.watch_file)
        for listener in (
            self._configure_metrics(settings.metrics),
            self.intake.configure(settings.intake),
            self.gateway_listener.configure(settings.gateway),
        ):
            try:
                await listener
            except ListenError as exc:
                log.error(f"{exc.key}: the new address is not used", error=str(exc))

    async def _configure_lanes(self, wanted: tuple[LaneSettings, ...]) -> None:
        """A reload: a lane for each new account (its lease taken as at start), the kept
        ones configured, a removed one's polls finished and its lease given up (its watches
        stay in the state until the account returns)."""
        by_name = {s.name: s for s in wanted}
        for name, lane in list(self.lanes.items()):
            if name in by_name:
                continue
            if lane is self.lane:
                log.error(
                    "the first account cannot be removed by a reload; restart the daemon",
                    account=name,
                )
                continue
            del self.lanes[name]
            lane.lease.close()
            await lane.drain(STOP_GRACE)
            await lane.aclose()
            log.warning(
                "account removed; its watches stay until it is configured again", account=name
            )
        for name, settings in by_name.items():
            kept = self.lanes.get(name)
            if kept is not None:
                kept.configure(settings)
                continue
            added = self._add_lane(settings)
            await added.lease.start()
            log.info("account added", account=name)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        logs.redactor.add(self._secrets())
        log.info("starting", node=self.node, **config_summary(self.config, self.config_path))
        for warning in self.config.warnings():
            log.warning(warning)
        self.metrics.watch_state(self._snapshot, self._live_numbers)
        try:
            await self._listen_on(self.settings)
        except ListenError as exc:
            log.error(f"cannot start: {exc.key}", error=str(exc))
            await self.intake.stop()
            await self.gateway_listener.stop()
            await self.metrics_listener.stop()
            for lane in self.lanes.values():
                await lane.vendor.aclose()
            await self.senders.aclose()
            self.store.close()
            self.lease_store.close()
            return 1
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        if self.skew is not None:
            # A node starting with its clock off takes no lease and claims no delivery.
            self.skew.judge(self.skew.clock.skew)
        # Before the first tick: a lone daemon polls from its first tick on.
        for lane in self.lanes.values():
            await lane.lease.start()
        self._release_orphan_claims()
        self._schedule()
        self.scheduler.start()
        self._listen()
        self.clock.keep_checking(self._stop)
        if self.skew is not None:
            self._clock_task = asyncio.create_task(self.skew.keep(self._stop), name="db clock")
        if not self._sole:  # several nodes may share the accounts
            self._spread_task = asyncio.create_task(self.spread.run(self._stop), name="spread")
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
        if self.settings.state.shared:
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
            "watch": self._guarded("poll_wakeup", self._poll_tick),
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
        for lane in self.lanes.values():
            lane.lease.close()  # no vendor call leaves from now on
        self.scheduler.shutdown(wait=False)
        await self.intake.stop()
        await self.gateway_listener.stop()
        if self.wakeups is not None:
            await self.wakeups.close()
        await self.metrics_listener.stop()
        await asyncio.gather(
            *(lane.drain(STOP_GRACE) for lane in self.lanes.values()),
            self.dispatcher.drain(STOP_GRACE),
        )
        # After the last calls: another node may take over.
        await asyncio.gather(*(lane.aclose() for lane in self.lanes.values()))
        await self.senders.aclose()
        for task in (self._clock_task, self._spread_task):  # they wait on the stop
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, STOP_GRACE)
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

    # Ctrl-C before the daemon's own handler is in place (opening the state, a connect to
    # a database that does not answer) interrupts at once: asyncio.run's handler would only
    # cancel the main task, which is not awaiting anything yet, and the start-up went on.
    # The CLI turns KeyboardInterrupt into exit code 130, without a traceback.
    signal.signal(signal.SIGINT, _interrupt)
    state = state_settings(config)
    if state.shared:
        # Several nodes may share a PostgreSQL state: no file, no lock.
        return asyncio.run(main())
    prepare_state_dir(state.path)  # only the default directory is created
    with InstanceLock(state.path):
        return asyncio.run(main())


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


__all__ = ["ClockWatch", "Daemon", "StoreOutage", "run_daemon"]
