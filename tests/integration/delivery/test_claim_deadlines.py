"""A delivery claim's deadline runs on the suspend-aware steady clock, and is looked at again
as the request's first byte is about to be written: real senders, the real receiver over
loopback HTTP, a real SQLite file.

A host suspend is the one thing a test cannot produce: it is CLOCK_BOOTTIME moving on while
CLOCK_MONOTONIC does not (``time.clock_gettime`` patched for that clock only). A node
"frozen" between the start of its attempt and the request is a steady clock the test moves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from notifier.delivery.senders import SlackSender, WebhookSender
from notifier.models import WatchSpec
from notifier.store import Store
from tests.kit import OPS_SECRET, SLACK_PATH, FakeClock, ReceiverServer
from tests.kit.delivery import attempts_done, finished, make_dispatcher

TIMEOUT = 3.0
BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def queue(store: Store, clock: FakeClock, job_id: str, endpoints: list[str]) -> None:
    detail, event = finished(job_id, clock)
    store.add_watches([WatchSpec(job_id)], "queue")
    assert store.record_terminal(detail, event, endpoints)


def rows(store: Store) -> dict[str, dict[str, Any]]:
    query = "SELECT endpoint, state, attempts, claimed_by, claim_token FROM deliveries"
    return {row["endpoint"]: dict(row) for row in store._db.execute(query)}


@pytest.mark.skipif(BOOTTIME is None, reason="no CLOCK_BOOTTIME on this system")
async def test_a_claim_taken_before_a_host_suspend_has_lapsed_after_it(
    tmp_path: Path, receiver: ReceiverServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's own clock (no test clock passed): a suspend of an hour between the
    claim and the attempt leaves the claim lapsed (another node may hold the delivery), so
    nothing is sent on it; CLOCK_MONOTONIC, which stops during a suspend, would send."""
    clock = FakeClock()
    rec = receiver.receiver
    with Store(tmp_path / "state.db", clock=clock) as store:
        queue(store, clock, "job-1", ["ops"])
        async with httpx.AsyncClient() as client:
            sender = WebhookSender(client, f"{receiver.url}/ops", [OPS_SECRET], TIMEOUT)
            dispatcher = make_dispatcher(store, {"ops": (sender, 1)}, [1.0], clock=clock)
            await dispatcher.tick()  # claimed; the attempt runs at the next await
            real = time.clock_gettime

            def suspended(clock_id: int) -> float:
                return real(clock_id) + (3600.0 if clock_id == BOOTTIME else 0.0)

            monkeypatch.setattr(time, "clock_gettime", suspended)  # the host slept an hour
            with capture_logs() as logs:
                await attempts_done()
            await dispatcher.drain(1.0)
        assert rec.all() == []
        row = rows(store)["ops"]
        assert (row["state"], row["attempts"], row["claimed_by"]) == ("pending", 0, None)
    said = [e for e in logs if e["event"].startswith("claim too short to start")]
    assert len(said) == 1 and said[0]["log_level"] == "info", logs


async def test_a_request_that_would_outlive_its_claim_is_not_written(
    tmp_path: Path, receiver: ReceiverServer
) -> None:
    """Two endpoints share one Slack URL, one message at a time: the second attempt starts
    with its claim's full time, then waits for the first message. The node freezes meanwhile;
    when the second request's first byte is about to be written, less is left of its claim
    than the request may take: it is not written, and that is no attempt (nothing recorded,
    the claim given back). The next tick claims it afresh and sends it."""
    clock = FakeClock()
    steady = FakeClock(1000.0)
    rec = receiver.receiver
    rec.set_delay(SLACK_PATH, 110.0)  # the first message is held until the test lets it go
    with Store(tmp_path / "state.db", clock=clock) as store:
        queue(store, clock, "job-1", ["team", "alerts"])
        async with httpx.AsyncClient() as client:
            slack = SlackSender(client, f"{receiver.url}{SLACK_PATH}", TIMEOUT, min_spacing=0.1)
            dispatcher = make_dispatcher(
                store,
                {"team": (slack, 1), "alerts": (slack, 1)},
                [1.0],
                clock=clock,
                monotonic=steady,
            )
            with capture_logs() as logs:
                await dispatcher.tick()
                assert await rec.wait_for(lambda r: len(r.all(SLACK_PATH)) == 1, timeout=10)
                # Both attempts started (the second waits for the URL). Its claim lasts
                # 2 x (0.1 + 3) + 5 = 11.2 s: after 9 s of freeze, 2.2 s < the 3 s request.
                steady.advance(9.0)
                rec.set_delay(SLACK_PATH, 0)
                await attempts_done()
            assert len(rec.all(SLACK_PATH)) == 1
            state = rows(store)
            held = next(name for name, row in state.items() if row["state"] == "pending")
            sent = next(name for name in state if name != held)
            assert state[sent]["state"] == "delivered"
            assert (state[held]["attempts"], state[held]["claimed_by"]) == (0, None)
            history = store.event_history(store.list_events()[0]["event_id"])
            assert history is not None
            attempted = {d["endpoint"]: len(d["history"]) for d in history["deliveries"]}
            assert attempted == {sent: 1, held: 0}
            said = [e for e in logs if e["event"].startswith("claim too short to send")]
            assert len(said) == 1 and said[0]["log_level"] == "info", logs
            assert said[0]["endpoint"] == held

            await dispatcher.tick()  # a fresh claim, with its full time
            await attempts_done()
            assert len(rec.all(SLACK_PATH)) == 2
            row = rows(store)[held]
            assert (row["state"], row["attempts"], row["claim_token"]) == ("delivered", 1, 2)
            await dispatcher.drain(1.0)
