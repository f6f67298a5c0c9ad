"""Prometheus metrics and a health check, served on ``metrics.listen``.

Counters and histograms are fed by observers the daemon hangs on the vendor client and the
dispatcher; gauges of stored state are read from the store at scrape time, so they are never
stale and cost nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from notifier.models import SendResult

if TYPE_CHECKING:
    from notifier.store import DueDelivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Label values kept as they are; any other is counted as ``other`` (a client or a vendor
#: must not be able to create series without bound).
VENDOR_RESULTS = frozenset(
    {"0", "400", "10400", "10401", "40000", "40001", "40002", "50000", "50011", "51000"}
    | {"timeout", "http_error", "bad_answer", "error"}
)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DETECTION_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300, 600)


class _StateCollector(Collector):
    """Gauges computed on scrape from a callback returning the daemon's live numbers."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], metrics: Metrics) -> None:
        self._snapshot = snapshot
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = {**self._snapshot(), **self._metrics.live_values}
        watches = GaugeMetricFamily("chanjing_watches", "Watches by state.", labels=["state"])
        for state, count in snap["watches"].items():
            watches.add_metric([state], count)
        yield watches
        deliveries = GaugeMetricFamily(
            "chanjing_deliveries", "Deliveries by state and endpoint.", labels=["state", "endpoint"]
        )
        for (state, endpoint), count in snap["deliveries"].items():
            deliveries.add_metric([state, endpoint], count)
        yield deliveries
        yield from _lane_metrics(snap.get("lanes", {}))
        yield GaugeMetricFamily(
            "chanjing_state_writable",
            "1 while the state file can be written; 0 while polling and delivery are paused.",
            value=snap["state_writable"],
        )
        yield GaugeMetricFamily(
            "chanjing_delivery_results_unrecorded",
            "Delivery results held in memory because the state could not be written.",
            value=snap["results_unrecorded"],
        )
        failing = GaugeMetricFamily(
            "chanjing_endpoint_failing",
            "1 while an endpoint's attempts keep failing (alerts thresholds); 0 otherwise.",
            labels=["endpoint"],
        )
        for endpoint, value in snap.get("endpoints_failing", {}).items():
            failing.add_metric([endpoint], value)
        yield failing
        vendor = GaugeMetricFamily(
            "chanjing_vendor_failing",
            "1 while the account's vendor calls keep failing (alerts.vendor_failing_for), its "
            "credentials are rejected or another fetcher keeps revoking its token; 0 otherwise.",
            labels=["account"],
        )
        for account, value in snap.get("vendor_failing", {}).items():
            vendor.add_metric([account], value)
        yield vendor
        yield GaugeMetricFamily(
            "chanjing_gateway_creates_unwatched",
            "Jobs created through the gateway whose watch could not be written yet (kept in "
            "memory and written as soon as the state allows).",
            value=snap.get("gateway_pending", 0),
        )
        skew = snap.get("clock_skew")
        if skew is not None:  # PostgreSQL: the shared schedule keeps the database's time
            yield GaugeMetricFamily(
                "chanjing_clock_skew_seconds",
                "This node's wall clock minus the database's, at the last sample; beyond "
                "5 s either way the node sends no webhooks and calls no vendor.",
                value=skew,
            )
        sweeps = snap.get("sweep")
        if sweeps is not None:
            yield from _sweep_metrics(sweeps)
        leases = snap.get("leases")
        if leases is not None:
            yield from _lease_metrics(leases)


def _lane_metrics(lanes: dict[str, dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """Each account's budget and polls, read from its lane (``Daemon._live_numbers``)."""
    families = {
        "budget_in_use": GaugeMetricFamily(
            "chanjing_budget_in_use",
            "Vendor calls in the last second as a fraction of the account's qps.",
            labels=["account"],
        ),
        "qps": GaugeMetricFamily(
            "chanjing_budget_qps",
            "Configured vendor budget of the account (calls per second).",
            labels=["account"],
        ),
        "polls_in_flight": GaugeMetricFamily(
            "chanjing_polls_in_flight",
            "Polls waiting for the account's budget or in flight.",
            labels=["account"],
        ),
    }
    for account, numbers in lanes.items():
        for key, family in families.items():
            family.add_metric([account], numbers[key])
    yield from families.values()


def _lease_metrics(
    leases: dict[str, dict[str, Any]],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each account's vendor lease, read from its keeper (``Daemon._live_numbers``)."""
    held = GaugeMetricFamily(
        "chanjing_lease_held",
        "1 while this node holds the account's vendor lease (it alone calls the vendor as "
        "that account); 0 on a standby.",
        labels=["account", "node"],
    )
    left = GaugeMetricFamily(
        "chanjing_lease_seconds_left",
        "Seconds until this node's lease of the account runs out unless renewed (0: not held).",
        labels=["account"],
    )
    changes = CounterMetricFamily(
        "chanjing_lease_changes",
        "Vendor lease changes on this node: acquired, lost (taken by another node or not "
        "renewed in time), released (a clean stop), handed_over (to spread accounts).",
        labels=["account", "change"],
    )
    withheld = CounterMetricFamily(
        "chanjing_vendor_calls_withheld",
        "Vendor calls not sent because the lease was not held (with its margin left) when "
        "they were about to go.",
        labels=["account"],
    )
    for account, lease in leases.items():
        held.add_metric([account, lease["node"]], lease["held"])
        left.add_metric([account], lease["seconds_left"])
        for change, count in lease["changes"].items():
            changes.add_metric([account, change], count)
        withheld.add_metric([account], lease["withheld"])
    yield from (held, left, changes, withheld)


def _sweep_metrics(
    sweeps: dict[str, dict[str, Any]],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each account's list sweeps, read from its lane's poller (``Poller.sweep_state``)."""
    page_size = GaugeMetricFamily(
        "chanjing_sweep_page_size", "Jobs asked for per list call.", labels=["account"]
    )
    paused = GaugeMetricFamily(
        "chanjing_sweep_paused",
        "1 while the account's list sweeps wait after a failed list call (detail polls carry on).",
        labels=["account"],
    )
    retry_in = GaugeMetricFamily(
        "chanjing_sweep_retry_in_seconds",
        "Seconds until the account's next list sweep is tried after failures (0: not paused).",
        labels=["account"],
    )
    results = CounterMetricFamily(
        "chanjing_sweeps",
        "List sweeps by result: ok, partial (out of budget; the next resumes), refused "
        "(page size rejected), failed.",
        labels=["account", "result"],
    )
    discovered = CounterMetricFamily(
        "chanjing_discovered",
        "Watches made by discovery (watch.discover) from the account's list sweeps.",
        labels=["account"],
    )
    for account, sweep in sweeps.items():
        page_size.add_metric([account], sweep["page_size"])
        paused.add_metric([account], 1 if sweep["paused"] else 0)
        retry_in.add_metric([account], sweep["retry_in"])
        for result, count in sweep["results"].items():
            results.add_metric([account, result], count)
        discovered.add_metric([account], sweep.get("discovered", 0))
    yield from (page_size, paused, retry_in, results, discovered)


class Metrics:
    def __init__(self, node: str = "") -> None:
        """``node``: this daemon's ``state.node``, a label of its vendor calls (only the
        vendor lease holder calls; over several nodes, their sum is the account's use)."""
        self.node = node
        self.registry = CollectorRegistry()
        self._live: Callable[[], dict[str, Any]] = dict
        self.live_values: dict[str, Any] = {}
        r = self.registry
        self.vendor_calls = Counter(
            "chanjing_vendor_calls",
            "Vendor API calls by account, endpoint, result code (or error) and calling node.",
            ["account", "endpoint", "result", "node"],
            registry=r,
        )
        self.vendor_latency = Histogram(
            "chanjing_vendor_latency_seconds",
            "Vendor API call latency.",
            ["account", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.throttled = Counter(
            "chanjing_vendor_throttled",
            "Vendor answers 40001 (over the account's QPS limit).",
            ["account"],
            registry=r,
        )
        self.token_refreshes = Counter(
            "chanjing_token_refreshes",
            "Access tokens fetched from the vendor.",
            ["account"],
            registry=r,
        )
        self.token_revoked = Counter(
            "chanjing_vendor_token_revoked",
            "Our access token revoked by another fetcher with this app_id while good for a "
            "while yet (another program or daemon on the account).",
            ["account"],
            registry=r,
        )
        self.attempts = Counter(
            "chanjing_delivery_attempts",
            "Delivery attempts by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "chanjing_delivery_latency_seconds",
            "Duration of one delivery attempt.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.detection_latency = Histogram(
            "chanjing_detection_latency_seconds",
            "From the last poll that saw the job unfinished (completion came after it) to the "
            "first delivery attempt: an upper bound of the time users waited.",
            ["endpoint"],
            buckets=DETECTION_BUCKETS,
            registry=r,
        )
        self.claims = Counter(
            "chanjing_delivery_claims",
            "Deliveries this node claimed for an attempt.",
            ["endpoint"],
            registry=r,
        )
        self.claims_expired = Counter(
            "chanjing_delivery_claims_expired",
            "Claims with too little time left to start the attempt (the node stalled after "
            "claiming): not sent, claimed again.",
            ["endpoint"],
            registry=r,
        )
        self.results_superseded = Counter(
            "chanjing_delivery_results_superseded",
            "Attempt results not written: claim_lost (the claim lapsed and another node took "
            "the delivery over) or reset (a replay or park came first).",
            ["endpoint", "reason"],
            registry=r,
        )
        self.intake_requests = Counter(
            "chanjing_intake_requests",
            "Requests to the intake API by method, route (its template) and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.intake_latency = Histogram(
            "chanjing_intake_latency_seconds",
            "Time to answer an intake API request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gateway_calls = Counter(
            "chanjing_gateway_calls",
            "Applications' calls to the gateway by vendor path (other: any path not known) "
            "and outcome: token, refused (no valid gateway token or credentials), absorbed "
            "(answered from the last observation, no vendor call), forwarded, relayed (to the "
            "lease holder), limited (answered 40001: no turn at the budget within "
            "gateway.max_wait), failed, rejected (bad request); account: the one the token or "
            "credentials are for (none: neither was valid).",
            ["account", "path", "outcome"],
            registry=r,
        )
        self.gateway_latency = Histogram(
            "chanjing_gateway_latency_seconds",
            "Time to answer a gateway call, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gateway_waited = Histogram(
            "chanjing_gateway_limiter_wait_seconds",
            "Time a forwarded call waited for its turn at the vendor budget.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        self.callbacks = Counter(
            "chanjing_callbacks",
            "Vendor callbacks by result: polling, in_flight, due (over the fast share), "
            "standby, finished, wrong_token, bad_body, error; for an id not watched yet "
            "verifying (its check started), pending (over the fast share: waiting), then "
            "what its check came to: verified (watched), unknown_job (vendor's 40000: no "
            "watch), unverified (vendor trouble or standby: watched unchecked), dropped "
            "(too many waiting); held (the state could not be written: kept in memory and "
            "handled again), lost (too many held: answered 503).",
            ["result"],
            registry=r,
        )

        self.wakeups = Counter(
            "chanjing_wakeups",
            "Notifications from the database (PostgreSQL) that ran a job at once instead of "
            "at its tick, by kind: queue, watch, delivery.",
            ["kind"],
            registry=r,
        )

    def watch_state(
        self, snapshot: Callable[[], dict[str, Any]], live: Callable[[], dict[str, Any]]
    ) -> None:
        """``snapshot`` reads the store and runs on the scrape's worker thread; ``live`` reads
        what the event loop owns (the limiter, the poller) and runs on the loop, before."""
        self._live = live
        self.registry.register(_StateCollector(snapshot, self))

    def refresh_live(self) -> None:
        """On the event loop: copy the loop's numbers for the next render."""
        self.live_values = self._live()

    # -- observers ------------------------------------------------------------------------

    def account(self, name: str) -> None:
        """Make the account's series (at 0) before its first call: a rate over them starts
        at the daemon's start, not at the first 40001."""
        self.throttled.labels(name)
        self.token_refreshes.labels(name)
        self.token_revoked.labels(name)

    def on_vendor_call(self, account: str, endpoint: str, result: str, seconds: float) -> None:
        # A label value per code the vendor may invent would be a new series each: bucket.
        result = result if result in VENDOR_RESULTS else "other"
        self.vendor_calls.labels(account, endpoint, result, self.node).inc()
        self.vendor_latency.labels(account, endpoint).observe(seconds)
        if result == "40001":
            self.throttled.labels(account).inc()
        if endpoint == "access_token" and result == "0":
            self.token_refreshes.labels(account).inc()

    def on_token_revoked(self, account: str) -> None:
        self.token_revoked.labels(account).inc()

    def on_delivery(
        self, endpoint: str, due: DueDelivery, result: SendResult, seconds: float
    ) -> None:
        outcome = "ok" if result.ok else ("permanent" if result.permanent else "failed")
        self.attempts.labels(endpoint, outcome).inc()
        self.delivery_latency.labels(endpoint).observe(seconds)
        seen = due.event.last_seen_running_at
        if due.attempts == 0 and seen is not None:
            started = time.time() - seconds
            self.detection_latency.labels(endpoint).observe(max(0.0, started - seen))

    def on_wakeup(self, kind: str) -> None:
        self.wakeups.labels(kind).inc()

    def on_claims(self, endpoint: str, what: str, count: int) -> None:
        if what == "claimed":
            self.claims.labels(endpoint).inc(count)
        elif what == "expired":
            self.claims_expired.labels(endpoint).inc(count)
        else:
            self.results_superseded.labels(endpoint, what).inc(count)

    def on_callback(self, result: str) -> None:
        self.callbacks.labels(result).inc()

    def on_intake_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"  # any token is a method
        self.intake_requests.labels(method, route, str(status)).inc()
        self.intake_latency.labels(route).observe(seconds)

    def on_gateway_call(
        self,
        path: str,
        outcome: str,
        status: int,
        seconds: float,
        waited: float | None,
        account: str | None = None,
    ) -> None:
        self.gateway_calls.labels(account or "none", path, outcome).inc()
        self.gateway_latency.labels(outcome).observe(seconds)
        if waited is not None:
            self.gateway_waited.observe(waited)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def make_app(metrics: Metrics, healthy: Callable[[], tuple[bool, str]]) -> web.Application:
    """``/metrics`` and ``/healthz`` (200 only while the loop ticks and the store writes)."""

    async def metrics_handler(_request: web.Request) -> web.Response:
        # Off the event loop: counting a long history must not stall polling and delivery.
        # What the loop owns is copied here first: the render thread must not walk it.
        metrics.refresh_live()
        body = await asyncio.to_thread(metrics.render)
        return web.Response(body=body, headers={"content-type": CONTENT_TYPE})

    async def health_handler(_request: web.Request) -> web.Response:
        ok, reason = healthy()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", health_handler)
    return app
