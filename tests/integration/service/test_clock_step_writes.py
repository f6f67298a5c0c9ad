"""A row written in the moment between a clock step and the daemon's next look at the clock
must not be moved by the step a second time (found under load: a delivery queued just after a
2-day forward step was shifted by another 2 days and never sent)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from notifier.config import load_config
from notifier.models import Event, JobDetail, WatchSpec
from notifier.service.daemon import Daemon
from tests.conftest import ReceiverServer, Simulator, base_config, daemon_env

STEP = 2 * 86400.0


def test_a_delivery_queued_right_after_a_step_is_not_shifted_twice(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in daemon_env(receiver.url).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, simulator.url, receiver.url)))
    daemon = Daemon(load_config(str(path)), str(path))
    store = daemon.store
    store.add_watches([WatchSpec("before"), WatchSpec("after")], "queue")
    store.record_terminal(
        JobDetail("before", 20, 100, "ok", "", "", 0, 1_700_000_000),
        Event("evt_before", "before", "lip_sync.succeeded", time.time(), b"{}"),
        ["ops"],
    )
    (queued_before,) = [d for d in store.list_deliveries() if d["event_id"] == "evt_before"]

    # The wall clock jumps (a narrow stand-in for NTP: the monotonic clock does not move).
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + STEP)
    # The first write after the step, before the daemon's once-a-second look.
    store.record_terminal(
        JobDetail("after", 20, 100, "ok", "", "", 0, 1_700_000_000),
        Event("evt_after", "after", "lip_sync.succeeded", time.time(), b"{}"),
        ["ops"],
    )
    stepped_now = time.time()
    deliveries = {d["event_id"]: d for d in store.list_deliveries()}
    # Written on the stepped clock: due now, not two days after it.
    assert abs(deliveries["evt_after"]["next_attempt_at"] - stepped_now) < 60
    # Written before the step: moved with it, so it is still due when it was.
    moved = deliveries["evt_before"]["next_attempt_at"] - queued_before["next_attempt_at"]
    assert abs(moved - STEP) < 60
    assert daemon.clock_watch.pending == 0.0
    store.close()
