"""The real dispatcher, store (a SQLite file) and senders against the real receiver over
loopback HTTP: how each kind of answer ends a delivery, Retry-After, and replays that race
an attempt in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from notifier.delivery.dispatcher import Dispatcher
from notifier.delivery.senders import Sender, SlackSender, WebhookSender
from notifier.models import Event, SendResult, WatchSpec
from notifier.store import Store
from tests.kit import OPS_SECRET, SLACK_PATH, FakeClock, ReceiverServer
from tests.kit.delivery import attempts_done, finished, make_dispatcher

SCHEDULE = [0.2, 0.4]


class Rig:
    """One event queued for one endpoint, and a dispatcher that sends it."""

    def __init__(self, tmp_path: Path, clock: FakeClock, client: httpx.AsyncClient) -> None:
        self.clock = clock
        self.client = client
        self.store = Store(tmp_path / "state.db", clock=clock)
        # What a CLI command sees: another connection to the same file.
        self.other = Store(tmp_path / "state.db", clock=clock)
        self.dispatcher: Dispatcher | None = None

    def queue(self, endpoint: str, job_id: str = "job-1") -> Event:
        detail, event = finished(job_id, self.clock)
        self.store.add_watches([WatchSpec(job_id)], "queue")
        assert self.store.record_terminal(detail, event, [endpoint])
        return event

    def start(self, endpoint: str, sender: Sender, schedule: list[float] = SCHEDULE) -> Dispatcher:
        self.dispatcher = make_dispatcher(
            self.store, {endpoint: (sender, 2)}, schedule, clock=self.clock
        )
        return self.dispatcher

    def row(self) -> dict[str, Any]:
        (only,) = self.other.list_deliveries()
        return only

    def close(self) -> None:
        self.store.close()
        self.other.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with httpx.AsyncClient() as client:
        r = Rig(tmp_path, FakeClock(), client)
        yield r
        if r.dispatcher is not None:
            await r.dispatcher.drain(1.0)
        r.close()


async def run_until_settled(rig: Rig, done: Callable[[dict[str, Any]], bool], steps: int) -> None:
    """Tick, let the attempts end, move the clock past any retry; until ``done(row)``."""
    assert rig.dispatcher is not None
    for _ in range(steps):
        await rig.dispatcher.tick()
        await attempts_done()
        if done(rig.row()):
            return
        rig.clock.advance(5)
    raise AssertionError(f"not settled: {rig.row()}")


def webhook(rig: Rig, receiver: ReceiverServer) -> WebhookSender:
    return WebhookSender(rig.client, f"{receiver.url}/ops", [OPS_SECRET], 3.0)


async def test_schedule_exhausted_is_dead_after_every_step(
    rig: Rig, receiver: ReceiverServer
) -> None:
    receiver.receiver.script("/ops", [500] * 10)
    rig.queue("ops")
    rig.start("ops", webhook(rig, receiver))
    await run_until_settled(rig, lambda r: r["state"] != "pending", steps=10)
    row = rig.row()
    assert row["state"] == "dead" and row["attempts"] == len(SCHEDULE) + 1
    assert row["last_status"] == 500 and row["last_error"] == "HTTP 500"
    assert len(receiver.receiver.all("/ops")) == len(SCHEDULE) + 1


async def test_410_gone_is_dead_at_once(rig: Rig, receiver: ReceiverServer) -> None:
    receiver.receiver.script("/ops", [410])
    rig.queue("ops")
    rig.start("ops", webhook(rig, receiver))
    await run_until_settled(rig, lambda r: r["state"] != "pending", steps=3)
    row = rig.row()
    assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 1, 410)


async def test_slack_4xx_is_dead_at_once(rig: Rig, receiver: ReceiverServer) -> None:
    receiver.receiver.script(SLACK_PATH, [404])
    rig.queue("team")
    rig.start("team", SlackSender(rig.client, f"{receiver.url}{SLACK_PATH}", 3.0))
    await run_until_settled(rig, lambda r: r["state"] != "pending", steps=3)
    row = rig.row()
    assert (row["state"], row["attempts"], row["last_status"]) == ("dead", 1, 404)
    assert len(receiver.receiver.all(SLACK_PATH)) == 1


class CrashingSender:
    """A sender with a bug: no server can make the real ones raise."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, event: Event, gate: object = None) -> SendResult:
        self.calls += 1
        raise RuntimeError("bug")


async def test_a_crashing_sender_is_a_failed_attempt(rig: Rig) -> None:
    rig.queue("ops")
    sender = CrashingSender()
    dispatcher = rig.start("ops", sender)
    await dispatcher.tick()
    await attempts_done()
    row = rig.row()
    assert row["state"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "internal error: RuntimeError"
    assert row["next_attempt_at"] > rig.clock.now  # on the schedule, not at once
    assert sender.calls == 1
    await run_until_settled(rig, lambda r: r["state"] != "pending", steps=10)
    assert rig.row()["state"] == "dead" and sender.calls == len(SCHEDULE) + 1


async def test_retry_after_steps_do_not_use_up_the_schedule(
    rig: Rig, receiver: ReceiverServer
) -> None:
    """A receiver that is deploying answers 503 Retry-After for longer than the schedule has
    steps: the delivery waits as asked (``Retry-After: 0`` as a second: never at once) and
    is delivered, with every POST counted."""
    receiver.receiver.script("/ops", [(503, {"Retry-After": "0"})] * 6)
    rig.queue("ops")
    rig.start("ops", webhook(rig, receiver), schedule=[10.0, 20.0])  # room for 6 s of waits
    await rig.dispatcher.tick()  # type: ignore[union-attr]
    await attempts_done()
    assert len(receiver.receiver.all("/ops")) == 1  # not a retry storm within the tick
    for _ in range(6):  # a second apart, as the floor says
        rig.clock.advance(1.0)
        await rig.dispatcher.tick()  # type: ignore[union-attr]
        await attempts_done()
    row = rig.row()
    assert row["state"] == "delivered", row
    assert row["attempts"] == 7 == len(receiver.receiver.all("/ops"))


async def test_replay_during_the_last_attempt_is_not_overwritten(
    rig: Rig, receiver: ReceiverServer
) -> None:
    """`deliveries replay` while the attempt that makes the delivery dead is in flight:
    the replay wins, and the delivery is sent again."""
    rec = receiver.receiver
    rec.script("/ops", [500, 500])
    event = rig.queue("ops")
    dispatcher = rig.start("ops", webhook(rig, receiver), schedule=[0.2])
    await dispatcher.tick()
    await attempts_done()
    assert rig.row()["attempts"] == 1 and rig.row()["state"] == "pending"

    rec.set_delay("/ops", 0.5)
    rig.clock.advance(5)
    await dispatcher.tick()
    assert await rec.wait_for(lambda r: len(r.all("/ops")) == 2, timeout=10)
    # The last step is in flight; the operator replays the event meanwhile.
    assert rig.other.replay([event.event_id]) == {event.event_id: 1}
    rec.set_delay("/ops", 0)
    await attempts_done()
    row = rig.row()
    assert row["state"] == "delivered", row
    assert len(rec.all("/ops")) == 3 and rec.all("/ops")[-1].accepted


async def test_a_failing_endpoints_failures_are_logged_at_most_once_a_second(
    rig: Rig, receiver: ReceiverServer
) -> None:
    """Issue 18: an endpoint that is down fails every delivery at every attempt; one line a
    second says so (the attempts are all recorded)."""
    receiver.receiver.script("/ops", [500] * 10)
    for i in range(10):
        rig.queue("ops", job_id=f"job-{i}")
    rig.start("ops", webhook(rig, receiver))
    with capture_logs() as logs:
        for _ in range(5):  # five ticks of the same (monotonic) second
            await rig.dispatcher.tick()  # type: ignore[union-attr]
            await attempts_done()
    failed = [e for e in logs if e["event"] == "delivery failed; will retry"]
    warned = [e for e in failed if e["log_level"] == "warning"]
    assert len(failed) == 10 and len(warned) == 1, [e["log_level"] for e in failed]
    assert len(receiver.receiver.all("/ops")) == 10
