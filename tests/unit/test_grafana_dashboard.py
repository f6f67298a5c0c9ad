"""The shipped Grafana dashboard asks only for metrics the daemon exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from notifier.service.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SUFFIXES = re.compile(r"_(total|bucket|count|sum)$")


def exported() -> set[str]:
    metrics = Metrics()
    metrics.watch_state(
        lambda: {"watches": {"active": 1}, "deliveries": {("pending", "ops"): 1}},
        lambda: {
            "lanes": {"default": {"budget_in_use": 0.5, "qps": 10, "polls_in_flight": 0}},
            "results_unrecorded": 0,
            "state_writable": 1,
            "sweep": {
                "default": {
                    "page_size": 100,
                    "paused": False,
                    "retry_in": 0.0,
                    "results": {"ok": 1},
                }
            },
        },
    )
    metrics.refresh_live()
    return {family.name for family in metrics.registry.collect()}


def test_every_query_names_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {SUFFIXES.sub("", name) for e in exprs for name in re.findall(r"chanjing_\w+", e)}
    assert used - exported() == set()
    # Each kind of number an operator needs is on it.
    for wanted in ("budget_in_use", "detection_latency", "deliveries", "sweep", "state_writable"):
        assert any(wanted in name for name in used), wanted


def test_an_account_variable_filters_the_budget_and_vendor_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["account"]["query"] == "label_values(chanjing_budget_qps, account)"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for name in ("chanjing_budget_in_use", "chanjing_vendor_calls_total"):
        (expr,) = [e for e in exprs if name in e]
        assert 'account=~"$account"' in expr, expr
