"""A row written in the moment between a clock step and the daemon's next look at the clock
must not be moved by the step a second time (found under load: a delivery queued just after a
2-day forward step was shifted by another 2 days and never sent)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from notifier.config import load_config
from notifier.models import Event, JobDetail, JobMemory, WatchSpec
from notifier.service.daemon import Daemon
from tests.kit import ReceiverServer, Simulator, base_config, daemon_env

STEP = 2 * 86400.0
STEP_BACK = 3600.0


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


def test_a_step_back_on_sqlite_moves_every_time_the_schedule_reads(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 19, item 1: a step back moved added_at but not answered_at, so an answer from
    before the step counted as the last look of a watch that had not had one (it expired
    unseen), and a retry's first attempt stayed in the future (its elapsed time negative)."""
    for name, value in daemon_env(receiver.url).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, simulator.url, receiver.url)))
    daemon = Daemon(load_config(str(path)), str(path))
    store = daemon.store
    t0 = time.time()
    store.add_watches([WatchSpec("running1"), WatchSpec("done1")], "queue")
    store.record_poll(
        JobDetail("running1", 10, 50, "", "", "", 0, 1_700_000_000),
        t0 + 1,
        t0 + 2,
        JobMemory(added_at=t0, last_poll_at=t0),
    )
    store.record_terminal(
        JobDetail("done1", 20, 100, "ok", "", "", 0, 1_700_000_000),
        Event("evt_done1", "done1", "lip_sync.succeeded", t0, b"{}"),
        ["ops"],
    )
    (delivery,) = store.list_deliveries()
    assert store.delivery_failed(delivery["id"], 500, "HTTP 500", t0 + 1, started=t0)

    offset = [-STEP_BACK]
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + offset[0])
    daemon.clock.check()  # the daemon's look: the step is noticed, the schedule moved

    # A minute passes on the stepped clock (a reader of its own: the daemon's look would
    # take the minute for another step): the watch is past give_up_after: 60 s.
    offset[0] += 61
    with store.reopen(clock=time.time) as later:
        # Its only answer is from before it was 60 s old: it gets a last look, not expiry.
        assert later.expirable_watches(60.0) == []
        watch = later.get_watch("running1")
        assert watch is not None and watch.next_poll_at is not None
        assert watch.next_poll_at <= time.time()
        (due,) = later.due_deliveries("ops", time.time(), 10)
    # The retry's clock moved with the step: its first attempt is still behind it.
    assert due.first_attempt_at is not None
    assert abs(due.first_attempt_at - (t0 - STEP_BACK)) < 60
    store.close()
