"""Operational events: what the daemon tells subscribed endpoints about itself.

``OperationalState`` is a pure state machine fed with facts (an endpoint's attempt results,
dead deliveries, each vendor account's answers) that returns the events they amount to;
``OperationalEvents`` records those events with their deliveries (every endpoint listing the
type, never the one the event is about, and of an event about an account only the endpoints
that take that account's events) and wakes the dispatcher. Operators alerting on a dead
receiver must not depend on that receiver, hence the routing rule.

The vendor's health is one per account (issue 22): each account has its own credentials,
token and budget, so one account failing is no news about another. Its events name the
account, and the credentials-rejected message names the account's keys in the config.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from notifier.delivery.transition import Route, account_view, new_event_id
from notifier.log import get_logger
from notifier.models import (
    DEFAULT_ACCOUNT,
    DELIVERY_DEAD,
    ENDPOINT_FAILING,
    ENDPOINT_RECOVERED,
    OPERATIONAL_EVENT_TYPES,
    VENDOR_FAILING,
    VENDOR_RECOVERED,
    Event,
)
from notifier.store import DB_ERRORS, Store

log = get_logger(component="operational")

#: Vendor call labels (see ``VendorClient.observer``) that mean the vendor failed us.
VENDOR_FAILURE_LABELS = frozenset(
    {"timeout", "http_error", "bad_answer", "error", "50000", "51000"}
)
#: The token call answering this code: the credentials were rejected.
CREDENTIALS_REJECTED_LABEL = "40000"
TOKEN_ENDPOINT = "access_token"
#: Our vendor token revoked by another fetcher this many times within TOKEN_REVOCATION_WINDOW
#: makes the vendor failing. One revocation is a program restarting or a CLI run elsewhere;
#: three in ten minutes is a caller that keeps fetching (a second daemon fetches every few
#: seconds), and each one costs a failed call, a token call, and that caller's next call.
#: A window without revocations (and a successful call) is the recovery.
TOKEN_REVOCATIONS_FAILING = 3
TOKEN_REVOCATION_WINDOW = 600.0
TOKEN_REVOKED_CAUSE = "token revoked repeatedly by another fetcher"
#: Prefix of the ``job_id`` an operational event is stored under (one row per occurrence).
SUBJECT_PREFIX = "ops:"


@dataclass(frozen=True)
class Thresholds:
    """``alerts``: 0 disables the count or the duration criterion."""

    endpoint_failing_after: int = 5
    endpoint_failing_for: float = 600.0
    vendor_failing_for: float = 120.0


@dataclass(frozen=True)
class OpsFact:
    """One operational event to record: its type, the endpoint it is about, its data, and
    the vendor account it concerns (None: none; only that account's endpoints get it)."""

    type: str
    data: dict[str, Any]
    subject: str | None = None
    account: str | None = None


@dataclass
class _Health:
    failures: int = 0
    #: First failure since the last success (None while succeeding).
    since: float | None = None
    last_error: str | None = None
    failing: bool = False


@dataclass
class _Vendor:
    """One account's vendor health."""

    calls: _Health = field(default_factory=_Health)
    #: When our vendor token was revoked by another fetcher, within TOKEN_REVOCATION_WINDOW.
    revocations: list[float] = field(default_factory=list)
    #: Failing for revocations: the successful calls between them are no recovery until a
    #: whole window passes without one.
    revoked: bool = False


def account_key(account: str) -> str:
    """Where an account is configured when the config does not say (the default account is
    the ``chanjing`` section's)."""
    return "chanjing" if account == DEFAULT_ACCOUNT else f"accounts ({account})"


@dataclass
class OperationalState:
    """Per-endpoint and per-account vendor health, and the transitions worth an event."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    endpoints: dict[str, _Health] = field(default_factory=dict)
    #: Each account's vendor health, by account name.
    vendors: dict[str, _Vendor] = field(default_factory=dict)
    #: Each account's key in the config (``chanjing``, ``accounts[1] (shop)``), for messages.
    account_keys: dict[str, str] = field(default_factory=dict)

    def vendor(self, account: str = DEFAULT_ACCOUNT) -> _Health:
        """``account``'s vendor health (healthy when nothing was heard of it)."""
        return self.vendors.get(account, _Vendor()).calls

    def failing_vendors(self) -> dict[str, _Health]:
        """The accounts whose vendor is failing, in the order they were first heard of."""
        return {name: v.calls for name, v in self.vendors.items() if v.calls.failing}

    def attempt(self, endpoint: str, ok: bool, error: str | None, now: float) -> list[OpsFact]:
        """An attempt's result, once recorded."""
        health = self.endpoints.setdefault(endpoint, _Health())
        if ok:
            was = health
            self.endpoints[endpoint] = _Health()
            if not was.failing:
                return []
            return [
                OpsFact(
                    ENDPOINT_RECOVERED,
                    {
                        "endpoint": endpoint,
                        "consecutive_failures": was.failures,
                        "since": _iso(was.since),
                        "last_error": was.last_error,
                    },
                    endpoint,
                )
            ]
        health.failures += 1
        health.last_error = error
        if health.since is None:
            health.since = now
        if health.failing or not self._endpoint_past(health, now):
            return []
        health.failing = True
        return [
            OpsFact(
                ENDPOINT_FAILING,
                {
                    "endpoint": endpoint,
                    "consecutive_failures": health.failures,
                    "since": _iso(health.since),
                    "last_error": error,
                },
                endpoint,
            )
        ]

    def _endpoint_past(self, health: _Health, now: float) -> bool:
        t = self.thresholds
        by_count = 0 < t.endpoint_failing_after <= health.failures
        by_time = t.endpoint_failing_for > 0 and health.since is not None
        return by_count or (by_time and now - (health.since or now) >= t.endpoint_failing_for)

    def dead(
        self, event: Event, endpoint: str, attempts: int, error: str | None, now: float
    ) -> list[OpsFact]:
        """A delivery exhausted its schedule. Not for operational events themselves: two
        dead endpoints would otherwise tell each other about each other forever. It is about
        the dead event's account (named in its data): that account's endpoints get it."""
        if event.type in OPERATIONAL_EVENT_TYPES:
            return []
        data: dict[str, Any] = {
            "event_id": event.event_id,
            "event_type": event.type,
            "job_id": event.job_id,
            "endpoint": endpoint,
            "attempts": attempts,
            "last_error": error,
        }
        if event.account is not None:
            data["account"] = event.account
        return [OpsFact(DELIVERY_DEAD, data, endpoint, event.account)]

    def vendor_call(self, account: str, endpoint: str, label: str, now: float) -> list[OpsFact]:
        """A vendor answer to ``account``'s client (``VendorClient.observer``'s endpoint and
        label)."""
        vendor = self.vendors.setdefault(account, _Vendor())
        health = vendor.calls
        if label == "0":
            if vendor.revoked and now - vendor.revocations[-1] < TOKEN_REVOCATION_WINDOW:
                return []
            vendor.calls, vendor.revoked = _Health(), False
            if not health.failing:
                return []
            data = {"since": _iso(health.since), "last_error": health.last_error}
            return [_vendor_fact(VENDOR_RECOVERED, account, data, health.failures)]
        rejected = endpoint == TOKEN_ENDPOINT and label == CREDENTIALS_REJECTED_LABEL
        if not rejected and label not in VENDOR_FAILURE_LABELS:
            return []  # throttled, unknown job, expired token: routine answers
        health.failures += 1
        key = self.account_keys.get(account) or account_key(account)
        health.last_error = (
            f"credentials rejected (check {key}.app_id / {key}.secret_key)"
            if rejected
            else f"{endpoint}: {label}"
        )
        if health.since is None:
            health.since = now
        past = now - health.since >= self.thresholds.vendor_failing_for
        if health.failing or not (rejected or past):
            return []
        health.failing = True
        data = {"since": _iso(health.since), "error": health.last_error}
        return [_vendor_fact(VENDOR_FAILING, account, data, health.failures)]

    def token_revoked(self, account: str, now: float) -> list[OpsFact]:
        """Another fetcher revoked ``account``'s vendor token
        (``VendorClient.on_token_revoked``)."""
        vendor = self.vendors.setdefault(account, _Vendor())
        recent = [t for t in vendor.revocations if now - t < TOKEN_REVOCATION_WINDOW]
        vendor.revocations = [*recent, now]
        health = vendor.calls
        if vendor.revoked:
            health.failures += 1
            return []
        if len(vendor.revocations) < TOKEN_REVOCATIONS_FAILING:
            return []
        vendor.revoked = True
        health.last_error = (
            f"{TOKEN_REVOKED_CAUSE} ({len(vendor.revocations)} times in "
            f"{TOKEN_REVOCATION_WINDOW / 60:g} min): route other callers through the gateway "
            "(gateway.listen) or run one daemon per account"
        )
        if health.failing:
            return []  # already told (calls failing); recovery now waits for the window too
        health.failing = True
        health.failures = len(vendor.revocations)
        health.since = vendor.revocations[0]
        data = {"since": _iso(health.since), "error": health.last_error}
        return [_vendor_fact(VENDOR_FAILING, account, data, health.failures)]

    def failing_endpoints(self) -> set[str]:
        return {name for name, health in self.endpoints.items() if health.failing}


def _vendor_fact(type_: str, account: str, data: dict[str, Any], failures: int) -> OpsFact:
    """A ``vendor.*`` event: its data names the account first."""
    return OpsFact(type_, {"account": account, **data, "failures": failures}, account=account)


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_operational_event(fact: OpsFact, now: float) -> Event:
    """The stored event: body shaped like the job events', a subject key unique per event."""
    event_id = new_event_id(now)
    body = {
        "type": fact.type,
        "timestamp": _iso(now),
        "data": fact.data,
    }
    return Event(
        event_id=event_id,
        job_id=f"{SUBJECT_PREFIX}{event_id}",
        type=fact.type,
        created_at=now,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        account=fact.account,
    )


def route_operational(fact: OpsFact, routes: Iterable[Route]) -> list[str]:
    """Every endpoint listing the type, except the one the event is about; of an event
    about an account, only the endpoints that take that account's events."""
    subscriptions = account_view(routes, fact.account)
    return [name for name, events in subscriptions if fact.type in events and name != fact.subject]


@dataclass(frozen=True)
class AlertSettings:
    """``alerts``, who is subscribed to which operational event (and of which accounts),
    and each account's key in the config."""

    routes: tuple[Route, ...]
    thresholds: Thresholds
    #: (account name, its key: ``chanjing``, ``accounts[1] (shop)``), every account.
    account_keys: tuple[tuple[str, str], ...] = ()


class OperationalEvents:
    """Feeds the state machine from the daemon's observers and records what it returns."""

    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.routes = list(settings.routes)
        self.state = OperationalState(settings.thresholds, account_keys=dict(settings.account_keys))
        self._clock = clock
        #: Called after events were recorded (the dispatcher's ``kick``).
        self.on_recorded: Callable[[], None] | None = None

    def configure(self, settings: AlertSettings) -> None:
        """A reload: new routing and thresholds; removed endpoints' and accounts' health is
        forgotten (an account configured again starts healthy, as its lane does)."""
        self.routes = list(settings.routes)
        self.state.thresholds = settings.thresholds
        self.state.account_keys = dict(settings.account_keys)
        names = {name for name, _events, _accounts in settings.routes}
        for gone in set(self.state.endpoints) - names:
            del self.state.endpoints[gone]
        for gone in set(self.state.vendors) - set(self.state.account_keys or self.state.vendors):
            del self.state.vendors[gone]

    def on_result(
        self, endpoint: str, event: Event, outcome: str, error: str | None, attempts: int
    ) -> None:
        """The dispatcher's report of a recorded attempt: delivered, failed or dead."""
        now = self._clock()
        facts = self.state.attempt(endpoint, outcome == "delivered", error, now)
        if outcome == "dead":
            facts += self.state.dead(event, endpoint, attempts, error, now)
        self._record(facts, now)

    def on_vendor_call(self, account: str, endpoint: str, label: str, _seconds: float) -> None:
        """A vendor answer to ``account``'s client (the daemon's observer of each lane's)."""
        now = self._clock()
        self._record(self.state.vendor_call(account, endpoint, label, now), now)

    def on_token_revoked(self, account: str) -> None:
        now = self._clock()
        self._record(self.state.token_revoked(account, now), now)

    def _record(self, facts: list[OpsFact], now: float) -> None:
        recorded = False
        for fact in facts:
            endpoints = route_operational(fact, self.routes)
            log.warning("operational event", type=fact.type, endpoints=endpoints, **fact.data)
            if not endpoints:
                continue
            try:
                self.store.record_operational(build_operational_event(fact, now), endpoints)
            except DB_ERRORS as exc:
                # The same facts stay visible as metrics and in this log.
                log.error("cannot record operational event", type=fact.type, error=str(exc))
                continue
            recorded = True
        if recorded and self.on_recorded is not None:
            self.on_recorded()
