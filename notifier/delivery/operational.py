"""Operational events: what the daemon tells subscribed endpoints about itself.

``OperationalState`` is a pure state machine fed with facts (an endpoint's attempt results,
dead deliveries, vendor answers) that returns the events they amount to; ``OperationalEvents``
records those events with their deliveries (every endpoint listing the type, never the one
the event is about) and wakes the dispatcher. Operators alerting on a dead receiver must not
depend on that receiver, hence the routing rule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from notifier.delivery.transition import new_event_id
from notifier.log import get_logger
from notifier.models import (
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
    """One operational event to record: its type, the endpoint it is about, its data."""

    type: str
    data: dict[str, Any]
    subject: str | None = None


@dataclass
class _Health:
    failures: int = 0
    #: First failure since the last success (None while succeeding).
    since: float | None = None
    last_error: str | None = None
    failing: bool = False


@dataclass
class OperationalState:
    """Per-endpoint and vendor health, and the transitions worth an event."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    endpoints: dict[str, _Health] = field(default_factory=dict)
    vendor: _Health = field(default_factory=_Health)
    #: When our vendor token was revoked by another fetcher, within TOKEN_REVOCATION_WINDOW.
    revocations: list[float] = field(default_factory=list)
    #: The vendor is failing for revocations: the successful calls between them are no
    #: recovery until a whole window passes without one.
    vendor_revoked: bool = False

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
        dead endpoints would otherwise tell each other about each other forever."""
        if event.type in OPERATIONAL_EVENT_TYPES:
            return []
        data = {
            "event_id": event.event_id,
            "event_type": event.type,
            "job_id": event.job_id,
            "endpoint": endpoint,
            "attempts": attempts,
            "last_error": error,
        }
        return [OpsFact(DELIVERY_DEAD, data, endpoint)]

    def vendor_call(self, endpoint: str, label: str, now: float) -> list[OpsFact]:
        """A vendor answer (``VendorClient.observer``'s endpoint and label)."""
        health = self.vendor
        if label == "0":
            if self.vendor_revoked and now - self.revocations[-1] < TOKEN_REVOCATION_WINDOW:
                return []
            self.vendor, self.vendor_revoked = _Health(), False
            if not health.failing:
                return []
            data = {"since": _iso(health.since), "last_error": health.last_error}
            return [OpsFact(VENDOR_RECOVERED, {**data, "failures": health.failures})]
        rejected = endpoint == TOKEN_ENDPOINT and label == CREDENTIALS_REJECTED_LABEL
        if not rejected and label not in VENDOR_FAILURE_LABELS:
            return []  # throttled, unknown job, expired token: routine answers
        health.failures += 1
        health.last_error = (
            "credentials rejected (check chanjing.app_id / chanjing.secret_key)"
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
        return [OpsFact(VENDOR_FAILING, {**data, "failures": health.failures})]

    def token_revoked(self, now: float) -> list[OpsFact]:
        """Another fetcher revoked our vendor token (``VendorClient.on_token_revoked``)."""
        recent = [t for t in self.revocations if now - t < TOKEN_REVOCATION_WINDOW]
        self.revocations = [*recent, now]
        health = self.vendor
        if self.vendor_revoked:
            health.failures += 1
            return []
        if len(self.revocations) < TOKEN_REVOCATIONS_FAILING:
            return []
        self.vendor_revoked = True
        health.last_error = (
            f"{TOKEN_REVOKED_CAUSE} ({len(self.revocations)} times in "
            f"{TOKEN_REVOCATION_WINDOW / 60:g} min): route other callers through the gateway "
            "(gateway.listen) or run one daemon per account"
        )
        if health.failing:
            return []  # already told (calls failing); recovery now waits for the window too
        health.failing = True
        health.failures = len(self.revocations)
        health.since = self.revocations[0]
        data = {"since": _iso(health.since), "error": health.last_error}
        return [OpsFact(VENDOR_FAILING, {**data, "failures": health.failures})]

    def failing_endpoints(self) -> set[str]:
        return {name for name, health in self.endpoints.items() if health.failing}


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
    )


def route_operational(
    fact: OpsFact, subscriptions: Iterable[tuple[str, Sequence[str]]]
) -> list[str]:
    """Every endpoint listing the type, except the one the event is about."""
    return [name for name, events in subscriptions if fact.type in events and name != fact.subject]


@dataclass(frozen=True)
class AlertSettings:
    """``alerts`` and who is subscribed to which operational event."""

    subscriptions: tuple[tuple[str, tuple[str, ...]], ...]
    thresholds: Thresholds


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
        self.subscriptions = list(settings.subscriptions)
        self.state = OperationalState(settings.thresholds)
        self._clock = clock
        #: Called after events were recorded (the dispatcher's ``kick``).
        self.on_recorded: Callable[[], None] | None = None

    def configure(self, settings: AlertSettings) -> None:
        """A reload: new routing and thresholds; removed endpoints' health is forgotten."""
        self.subscriptions = list(settings.subscriptions)
        self.state.thresholds = settings.thresholds
        names = {name for name, _events in settings.subscriptions}
        for gone in set(self.state.endpoints) - names:
            del self.state.endpoints[gone]

    def on_result(
        self, endpoint: str, event: Event, outcome: str, error: str | None, attempts: int
    ) -> None:
        """The dispatcher's report of a recorded attempt: delivered, failed or dead."""
        now = self._clock()
        facts = self.state.attempt(endpoint, outcome == "delivered", error, now)
        if outcome == "dead":
            facts += self.state.dead(event, endpoint, attempts, error, now)
        self._record(facts, now)

    def on_vendor_call(self, endpoint: str, label: str, _seconds: float) -> None:
        now = self._clock()
        self._record(self.state.vendor_call(endpoint, label, now), now)

    def on_token_revoked(self) -> None:
        now = self._clock()
        self._record(self.state.token_revoked(now), now)

    def _record(self, facts: list[OpsFact], now: float) -> None:
        recorded = False
        for fact in facts:
            endpoints = route_operational(fact, self.subscriptions)
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
