"""A delivery whose result cannot be written is not sent again until it can be.

The store is a real SQLite file; writes are refused the way SQLite refuses them
(``PRAGMA query_only``: "attempt to write a readonly database", which the dispatcher meets
like "database or disk is full" or "database is locked"), then allowed again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from notifier.delivery.senders import WebhookSender
from notifier.models import WatchSpec
from notifier.store import Store, StoreUnavailable
from tests.kit import OPS_SECRET, FakeClock, ReceiverServer, until
from tests.kit.delivery import attempts_done, finished, make_dispatcher


async def test_unwritable_result_is_held_not_resent(
    tmp_path: Path, receiver: ReceiverServer
) -> None:
    clock = FakeClock()
    rec = receiver.receiver
    with Store(tmp_path / "state.db", clock=clock) as store, Store(store.backend.path) as reader:
        detail, event = finished("job-1", clock)
        store.add_watches([WatchSpec("job-1")], "queue")
        store.record_terminal(detail, event, ["ops"])
        async with httpx.AsyncClient() as client:
            sender = WebhookSender(client, f"{receiver.url}/ops", [OPS_SECRET], 3.0)
            dispatcher = make_dispatcher(store, {"ops": (sender, 4)}, [1.0], clock=clock)
            with capture_logs() as logs:
                await dispatcher.tick()  # claims the delivery (a write); the attempt runs next
                store._db.execute("PRAGMA query_only = ON")  # the disk is full from here on
                # Either the write is retried a few times, or (the defect) the receiver is
                # flooded with the same delivery.
                await until(
                    lambda: getattr(dispatcher, "write_retries", 0) >= 2 or len(rec.all()) >= 10,
                    timeout=15,
                )
            said = [e for e in logs if e["event"].startswith("cannot record delivery results")]
            assert len(said) == 1 and said[0]["log_level"] == "error", logs
            assert len(rec.all("/ops")) == 1, f"resent {len(rec.all('/ops'))} times"
            assert dispatcher.unrecorded == 1
            # Blocked in its lane: a tick does not pick it again (nor can it claim anything
            # while the state cannot be written).
            with contextlib.suppress(StoreUnavailable):
                await dispatcher.tick()
            assert len(rec.all("/ops")) == 1
            (row,) = reader.list_deliveries()
            assert row["state"] == "pending" and row["attempts"] == 0

            store._db.execute("PRAGMA query_only = OFF")  # space freed
            await until(lambda: dispatcher.unrecorded == 0, timeout=30)
            await attempts_done()
            (row,) = reader.list_deliveries()
            assert row["state"] == "delivered" and row["attempts"] == 1
            assert len(rec.all("/ops")) == 1
            await dispatcher.drain(1.0)
