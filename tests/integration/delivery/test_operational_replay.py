"""`deliveries replay` of an operational event re-sends it to whom it went: it must not add
the endpoint the event is about (an endpoint is never told about itself)."""

from __future__ import annotations

import time

from notifier.delivery.operational import OpsFact, build_operational_event
from notifier.store import Store
from tests.kit import Workspace


def test_replay_of_an_operational_event_adds_no_recipient(workspace: Workspace) -> None:
    ops, watcher = workspace.config["endpoints"][:2]
    watcher.update(name="watcher", events=["endpoint.failing"])
    ops["events"] = ["lip_sync.succeeded", "endpoint.failing"]
    workspace.config["endpoints"] = [ops, watcher]
    workspace.write_config()
    fact = OpsFact("endpoint.failing", {"endpoint": "ops"}, "ops")
    event = build_operational_event(fact, time.time())
    with Store(workspace.state_path) as store:
        store.record_operational(event, ["watcher"])

    workspace.cli("deliveries", "replay", event.event_id)

    with Store(workspace.state_path) as store:
        endpoints = [d["endpoint"] for d in store.list_deliveries()]
    assert endpoints == ["watcher"]
