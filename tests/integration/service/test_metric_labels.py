"""Issue 18: the vendor's ``code`` and the request's HTTP method were metric labels without a
bound: each new value made a new series. Unknown ones are counted as ``other``."""

from __future__ import annotations

from notifier.service.metrics import Metrics


def test_unknown_codes_and_methods_are_counted_as_other() -> None:
    metrics = Metrics("n1")
    for code in range(1000, 1100):
        metrics.on_vendor_call("default", "detail", str(code), 0.01)
    metrics.on_vendor_call("default", "detail", "40001", 0.01)
    for i in range(50):
        metrics.on_intake_request(f"X{i}", "/v1/watches", 405, 0.001)
    text = metrics.render().decode()
    calls = [line for line in text.splitlines() if line.startswith("chanjing_vendor_calls_total{")]
    assert len(calls) == 2, calls
    assert any('result="other"' in line and line.endswith(" 100.0") for line in calls)
    assert any('result="40001"' in line for line in calls)
    requests = [
        line for line in text.splitlines() if line.startswith("chanjing_intake_requests_total{")
    ]
    assert len(requests) == 1 and 'method="other"' in requests[0], requests
