"""`chanjing-notifier run`: wires sources → store → poller → vendor → dispatcher → senders.

APScheduler is the clock; the store is the truth. Every job below only looks at the store
and acts, so a restart (or a crash) resumes exactly where the last one stopped.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from notifier import __version__
from notifier import log as logs
from notifier.config import Config, ConfigError, SlackEndpoint, WebhookEndpoint, load_config
from notifier.delivery.dispatcher import Dispatcher
from notifier.delivery.senders import Sender, SlackSender, WebhookSender
from notifier.intake.queue import take_queue
from notifier.intake.watchfile import WatchFile
from notifier.polling.policy import PollingSettings
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import RateLimiter
from notifier.polling.vendor import VendorClient
from notifier.service.http_server import AppServer
from notifier.service.metrics import Metrics, make_app
from notifier.service.sdnotify import SdNotifier
from notifier.store import Store

log = logs.get_logger(component="daemon")

#: How long in-flight vendor calls and deliveries may finish after SIGTERM.
STOP_GRACE = 5.0
POLL_TICK = 0.2
QUEUE_TICK = 1.0
WATCH_FILE_TICK = 2.0
DISPATCH_TICK = 1.0
HOUSEKEEPING_TICK = 30.0
STATUS_TICK = 5.0
#: /healthz fails when the poll tick (every 0.2 s) has not run for this long.
HEALTH_STALE_AFTER = 5.0
#: A vendor client replaced by a reload is closed once its last calls surely ended.
OLD_CLIENT_CLOSE_DELAY = 30.0


def polling_settings(config: Config) -> PollingSettings:
    p = config.polling
    return PollingSettings(p.min_interval, p.max_interval, p.give_up_after, p.policy)


def subscriptions(config: Config) -> list[tuple[str, Sequence[str]]]:
    return [(ep.name, list(ep.events)) for ep in config.endpoints]


def config_summary(config: Config, config_path: str | None) -> dict[str, Any]:
    """What the daemon runs with, for the start-up line: no secrets, no Slack URLs."""
    endpoints = []
    for ep in config.endpoints:
        item: dict[str, Any] = {"name": ep.name, "type": ep.type, "events": list(ep.events)}
        if isinstance(ep, WebhookEndpoint):
            parts = urlsplit(ep.url)
            item["target"] = f"{parts.scheme}://{parts.hostname}" + (
                f":{parts.port}" if parts.port else ""
            )
            item["secrets"] = len(ep.secret)
        endpoints.append(item)
    return {
        "version": __version__,
        "config": config_path,
        "state": str(config.state.path),
        "watch_file": str(config.watch.file) if config.watch.file else None,
        "vendor": config.chanjing.base_url,
        "qps": config.chanjing.qps,
        "min_interval": config.polling.min_interval,
        "max_interval": config.polling.max_interval,
        "give_up_after": config.polling.give_up_after,
        "retry_steps": len(config.delivery.retry_schedule),
        "endpoints": endpoints,
    }


class Daemon:
    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        self.sd = SdNotifier()
        self.metrics = Metrics()
        self.metrics_server: AppServer | None = None
        self.last_tick = time.monotonic()
        self.store = Store(config.state.path)
        self.limiter = RateLimiter(config.chanjing.qps)
        self.vendor = self._make_vendor(config)
        self._senders: dict[tuple[Any, ...], tuple[Sender, httpx.AsyncClient]] = {}
        self.dispatcher = Dispatcher(
            self.store,
            self._lanes(config),
            config.delivery.retry_schedule,
            observer=self.metrics.on_delivery,
        )
        self.poller = Poller(
            self.store,
            self.vendor,
            self.limiter,
            polling_settings(config),
            subscriptions(config),
            list_sweep=config.polling.list_sweep,
            on_event=self.dispatcher.kick,
        )
        self.watch_file = WatchFile(config.watch.file)
        self.scheduler = AsyncIOScheduler()
        self._stop = asyncio.Event()

    # -- construction from config ---------------------------------------------------------

    def _make_vendor(self, config: Config) -> VendorClient:
        c = config.chanjing
        client = VendorClient(
            base_url=c.base_url,
            app_id=c.app_id,
            secret_key=c.secret_key.get_secret_value(),
            limiter=self.limiter,
            store=self.store,
        )
        client.observer = self.metrics.on_vendor_call
        return client

    @staticmethod
    def _http_client(connections: int) -> httpx.AsyncClient:
        """One connection pool per sender, sized to its lane: httpcore's pool costs grow
        with its size, and one endpoint's connections never wait behind another's."""
        return httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
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
                    entry = (WebhookSender(client, ep.url, secrets, timeout), client)
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

    # -- scheduled jobs -------------------------------------------------------------------

    async def _take_queue(self) -> None:
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
        await self.poller.expire()

    async def _poll_tick(self) -> None:
        self.last_tick = time.monotonic()
        await self.poller.tick()

    def status_text(self) -> str:
        active, pending = self.store.live_counts()
        return f"watching {active} job(s), {pending} delivery(ies) pending"

    async def _status(self) -> None:
        self.sd.status(self.status_text())

    async def _watchdog(self) -> None:
        # Sent from the event loop: a stuck loop stops the pings and systemd restarts us.
        self.sd.watchdog()

    def health(self) -> tuple[bool, str]:
        stale = time.monotonic() - self.last_tick
        if stale > HEALTH_STALE_AFTER:
            return False, f"scheduler stalled: no tick for {stale:.1f}s"
        if not self.store.writable():
            return False, "state database is not writable"
        return True, "ok"

    def _snapshot(self) -> dict[str, Any]:
        """Numbers for a scrape. Runs on a worker thread (counting a long history takes a
        while), so it reads through a connection of its own."""
        with Store(self.store.path) as reader:
            watches = reader.watch_counts()
            deliveries = reader.delivery_counts_by_endpoint()
        return {
            "watches": watches,
            "deliveries": deliveries,
            "budget_in_use": self.limiter.in_use(),
            "qps": self.limiter.qps,
            "polls_in_flight": self.poller.in_flight,
            "sweep": self.poller.sweep_state(),
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
        server = AppServer(make_app(self.metrics, self.health), address[0], address[1])
        try:
            await server.start()
        except OSError as exc:
            log.error("cannot listen for metrics", listen=config.metrics.listen, error=str(exc))
            return
        self.metrics_server = server
        log.info("metrics listening", url=f"{server.url}/metrics", health=f"{server.url}/healthz")

    def _guarded(self, name: str, job: Callable[[], Any]) -> Callable[[], Any]:
        """A scheduled job that logs its failures instead of losing them in APScheduler."""

        async def run() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                return  # stopping: the job is cut short, nothing to report
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
                "interval",
                seconds=seconds,
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
        if new.state.path != old.state.path:
            log.warning(
                "state.path changed; restart the daemon to use the new file",
                running=str(old.state.path),
            )
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
        if new.polling.min_interval != old.polling.min_interval:
            self.scheduler.reschedule_job(
                "sweep", trigger="interval", seconds=new.polling.min_interval
            )
        self.poller.subscriptions = subscriptions(new)
        before = self._senders
        self.dispatcher.configure(self._lanes(new), new.delivery.retry_schedule)
        self._retire_clients(before)
        self.watch_file.path = new.watch.file
        await self._apply_metrics(new)
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
        log.info("starting", **config_summary(self.config, self.config_path))
        for warning in self.config.warnings():
            log.warning(warning)
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self.metrics.watch_state(self._snapshot)
        await self._apply_metrics(self.config)
        self._schedule()
        self.scheduler.start()
        active, pending = self.store.live_counts()
        log.info("ready", watching=active, deliveries_pending=pending)
        self.sd.ready(self.status_text())
        await self._stop.wait()
        return await self._shutdown()

    async def _shutdown(self) -> int:
        started = time.monotonic()
        self.sd.stopping()
        log.info("stopping", grace=STOP_GRACE)
        self.scheduler.shutdown(wait=False)
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await asyncio.gather(self.poller.drain(STOP_GRACE), self.dispatcher.drain(STOP_GRACE))
        await self.vendor.aclose()
        for _sender, client in self._senders.values():
            await client.aclose()
        self.store.close()
        self.sd.close()
        log.info("stopped", took=round(time.monotonic() - started, 2))
        return 0


def run_daemon(config: Config, config_path: str | None) -> int:
    """Run until SIGTERM/SIGINT; the exit code for the CLI."""

    async def main() -> int:
        daemon = Daemon(config, config_path)
        return await daemon.run()

    return asyncio.run(main())


__all__ = ["Daemon", "run_daemon"]
