"""The operational-events state machine, routing and event bodies (issue 9)."""

from __future__ import annotations

import json

import pytest

from notifier.config import ConfigError, parse_config
from notifier.delivery.operational import (
    TOKEN_REVOCATION_WINDOW,
    TOKEN_REVOCATIONS_FAILING,
    TOKEN_REVOKED_CAUSE,
    OperationalState,
    OpsFact,
    Thresholds,
    build_operational_event,
    route_operational,
)
from notifier.delivery.transition import Route
from notifier.models import Event

T0 = 1_700_000_000.0
#: The account the vendor tests' calls are made as (the ``chanjing`` section's).
ACCOUNT = "default"


def _types(facts: list[OpsFact]) -> list[str]:
    return [f.type for f in facts]


def test_failing_after_n_consecutive_failures_once_then_recovered() -> None:
    state = OperationalState(Thresholds(endpoint_failing_after=3, endpoint_failing_for=0))
    assert state.attempt("ops", False, "HTTP 503", T0) == []
    assert state.attempt("ops", False, "HTTP 503", T0 + 1) == []
    (failing,) = state.attempt("ops", False, "timed out", T0 + 2)
    assert failing.type == "endpoint.failing" and failing.subject == "ops"
    assert failing.data == {
        "endpoint": "ops",
        "consecutive_failures": 3,
        "since": "2023-11-14T22:13:20Z",
        "last_error": "timed out",
    }
    assert state.failing_endpoints() == {"ops"}
    assert state.attempt("ops", False, "HTTP 503", T0 + 3) == []  # told once
    (recovered,) = state.attempt("ops", True, None, T0 + 4)
    assert recovered.type == "endpoint.recovered"
    assert recovered.data["consecutive_failures"] == 4
    assert state.failing_endpoints() == set()
    assert state.attempt("ops", True, None, T0 + 5) == []  # only the first success


def test_a_success_resets_the_count() -> None:
    state = OperationalState(Thresholds(endpoint_failing_after=2, endpoint_failing_for=0))
    assert state.attempt("ops", False, "x", T0) == []
    assert state.attempt("ops", True, None, T0) == []  # was never failing: nothing to say
    assert state.attempt("ops", False, "x", T0) == []


def test_failing_by_time_since_the_first_failure() -> None:
    state = OperationalState(Thresholds(endpoint_failing_after=0, endpoint_failing_for=600))
    assert state.attempt("ops", False, "x", T0) == []
    assert state.attempt("ops", False, "x", T0 + 599) == []
    assert _types(state.attempt("ops", False, "x", T0 + 600)) == ["endpoint.failing"]


def test_endpoints_are_independent() -> None:
    state = OperationalState(Thresholds(endpoint_failing_after=1, endpoint_failing_for=0))
    assert _types(state.attempt("a", False, "x", T0)) == ["endpoint.failing"]
    assert state.attempt("b", True, None, T0) == []
    assert state.failing_endpoints() == {"a"}


def _event(event_type: str) -> Event:
    return Event("evt_1", "job1", event_type, T0, b"{}")


def test_dead_names_the_event_and_endpoint() -> None:
    state = OperationalState()
    (dead,) = state.dead(_event("lip_sync.failed"), "ops", 10, "HTTP 500", T0)
    assert dead.subject == "ops"
    assert dead.data == {
        "event_id": "evt_1",
        "event_type": "lip_sync.failed",
        "job_id": "job1",
        "endpoint": "ops",
        "attempts": 10,
        "last_error": "HTTP 500",
    }


def test_no_dead_event_about_an_operational_event() -> None:
    # Two dead endpoints subscribed to delivery.dead would report each other forever.
    assert OperationalState().dead(_event("delivery.dead"), "ops", 3, "x", T0) == []


def test_vendor_failing_after_the_duration_and_recovered() -> None:
    state = OperationalState(Thresholds(vendor_failing_for=120))
    assert state.vendor_call(ACCOUNT, "detail", "timeout", T0) == []
    assert state.vendor_call(ACCOUNT, "detail", "40001", T0 + 60) == []  # throttled: not a failure
    assert state.vendor_call(ACCOUNT, "detail", "50000", T0 + 119) == []
    (failing,) = state.vendor_call(ACCOUNT, "detail", "http_error", T0 + 120)
    assert failing.type == "vendor.failing" and failing.subject is None
    assert failing.data["failures"] == 3 and failing.data["error"] == "detail: http_error"
    assert state.vendor_call(ACCOUNT, "detail", "timeout", T0 + 130) == []
    assert _types(state.vendor_call(ACCOUNT, "detail", "0", T0 + 140)) == ["vendor.recovered"]
    assert not state.vendor().failing


def test_rejected_credentials_fail_the_vendor_at_once() -> None:
    state = OperationalState(Thresholds(vendor_failing_for=120))
    (failing,) = state.vendor_call(ACCOUNT, "access_token", "40000", T0)
    assert "credentials rejected" in failing.data["error"]
    # A detail call answering 40000 is an unknown job, not a vendor failure.
    assert OperationalState().vendor_call(ACCOUNT, "detail", "40000", T0) == []


def _revoked_then_ok(state: OperationalState, now: float) -> list[OpsFact]:
    """One revocation as the client reports it: the 10400, the hook, a new token, the call."""
    facts = state.vendor_call(ACCOUNT, "detail", "10400", now)
    facts += state.token_revoked(ACCOUNT, now)
    facts += state.vendor_call(ACCOUNT, "access_token", "0", now)
    return facts + state.vendor_call(ACCOUNT, "detail", "0", now)


def test_token_revocations_spread_wider_than_the_window_are_no_failure() -> None:
    state = OperationalState()
    spacing = TOKEN_REVOCATION_WINDOW / (TOKEN_REVOCATIONS_FAILING - 1)
    for n in range(3 * TOKEN_REVOCATIONS_FAILING):
        assert _revoked_then_ok(state, T0 + n * spacing) == []
    assert not state.vendor().failing


def test_repeated_token_revocations_fail_the_vendor_once_until_a_quiet_window() -> None:
    state = OperationalState()
    for n in range(TOKEN_REVOCATIONS_FAILING - 1):
        assert _revoked_then_ok(state, T0 + n) == []
    last = T0 + TOKEN_REVOCATIONS_FAILING - 1
    (failing,) = _revoked_then_ok(state, last)
    assert failing.type == "vendor.failing"
    assert failing.data["error"].startswith(TOKEN_REVOKED_CAUSE)
    assert failing.data["failures"] == TOKEN_REVOCATIONS_FAILING
    assert failing.data["since"] == "2023-11-14T22:13:20Z"
    # Successful calls within the window are no recovery; nor is a failure told again.
    assert state.vendor_call(ACCOUNT, "detail", "0", last + TOKEN_REVOCATION_WINDOW - 1) == []
    assert state.vendor().failing
    (recovered,) = state.vendor_call(ACCOUNT, "detail", "0", last + TOKEN_REVOCATION_WINDOW)
    assert recovered.type == "vendor.recovered"
    assert recovered.data["last_error"].startswith(TOKEN_REVOKED_CAUSE)
    assert not state.vendor().failing
    # A new episode counts afresh.
    assert _revoked_then_ok(state, last + TOKEN_REVOCATION_WINDOW + 1) == []


def test_revocations_while_calls_already_fail_add_no_second_failing_event() -> None:
    state = OperationalState(Thresholds(vendor_failing_for=120))
    state.vendor_call(ACCOUNT, "detail", "timeout", T0)
    assert _types(state.vendor_call(ACCOUNT, "detail", "timeout", T0 + 120)) == ["vendor.failing"]
    for n in range(TOKEN_REVOCATIONS_FAILING):
        assert state.token_revoked(ACCOUNT, T0 + 121 + n) == []
    # The calls work again, but the revocations have not stopped: still failing.
    assert state.vendor_call(ACCOUNT, "detail", "0", T0 + 130) == []
    assert _types(
        state.vendor_call(ACCOUNT, "detail", "0", T0 + 124 + TOKEN_REVOCATION_WINDOW)
    ) == ["vendor.recovered"]


def test_routing_skips_the_subject_and_non_subscribers() -> None:
    subs: list[Route] = [
        ("ops", ("lip_sync.succeeded", "endpoint.failing"), None),
        ("watcher", ("endpoint.failing",), None),
        ("analytics", ("lip_sync.succeeded",), None),
    ]
    fact = OpsFact("endpoint.failing", {}, "ops")
    assert route_operational(fact, subs) == ["watcher"]
    assert route_operational(OpsFact("endpoint.failing", {}, "watcher"), subs) == ["ops"]


def test_event_body_and_subject_key() -> None:
    event = build_operational_event(OpsFact("vendor.failing", {"error": "x"}), T0)
    assert event.job_id == f"ops:{event.event_id}"
    assert json.loads(event.body) == {
        "type": "vendor.failing",
        "timestamp": "2023-11-14T22:13:20Z",
        "data": {"error": "x"},
    }


def _config(**extra: object) -> dict[str, object]:
    return {"chanjing": {"app_id": "a", "secret_key": "s"}, **extra}


def test_alerts_defaults_and_opt_in_events() -> None:
    config = parse_config(
        _config(
            endpoints=[
                {"name": "w", "type": "webhook", "url": "https://x.test/h", "secret": _SECRET},
                {
                    "name": "o",
                    "type": "webhook",
                    "url": "https://x.test/o",
                    "secret": _SECRET,
                    "events": ["delivery.dead", "vendor.failing", "vendor.recovered"],
                },
            ]
        )
    )
    assert config.alerts.endpoint_failing_after == 5
    assert config.alerts.endpoint_failing_for == 600.0
    assert config.alerts.vendor_failing_for == 120.0
    # The default is every job event (of every kind) and no operational one.
    assert config.endpoints[0].events == ["*"]
    default = config.endpoints[0].event_types()
    assert {"lip_sync.succeeded", "lip_sync.failed", "lip_sync.expired"} <= set(default)
    assert not {"delivery.dead", "vendor.failing", "endpoint.failing"} & set(default)
    assert config.endpoints[1].events == ["delivery.dead", "vendor.failing", "vendor.recovered"]


def test_alerts_unknown_keys_are_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(alerts={"endpoint_failing_aftr": 3, "vendor_failing_for": "1m"}))
    assert "alerts.endpoint_failing_aftr" in str(info.value)
    ok = parse_config(_config(alerts={"vendor_failing_for": "1m", "endpoint_failing_for": 0}))
    assert ok.alerts.vendor_failing_for == 60.0 and ok.alerts.endpoint_failing_for == 0.0


_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
