"""An event lost with a PostgreSQL failover is made again with the id it had (issue 19,
item 11).

With asynchronous replication a promoted replica may lack a committed transaction: the
watch's end, its event and its deliveries (one transaction, so all of them) are not there,
and the watch is still active, as the replica last heard of it. The test makes exactly that
happen to the database a real daemon runs on, and judges from the receiver: the job's event
comes again under the webhook-id it came with (the receiver de-duplicates on it), and a
watch that was reopened reports its next event under an id of its own.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from notifier.delivery.transition import job_event_id
from notifier.tools.receiver import Receiver
from tests.kit import ReceiverServer, Simulator, Workspace, base_config, daemon_env

pytestmark = pytest.mark.slow

WAIT = 60.0  # bounds for a loaded machine, not measurements


def lose_on_failover(url: str, job_id: str, event_type: str) -> None:
    """The state of a replica promoted before the job's end reached it: no such event, no
    deliveries of it, no attempts; the watch active and due."""
    args = (job_id, event_type)
    with psycopg.connect(url, autocommit=True) as db, db.transaction():
        events = "SELECT event_id FROM events WHERE job_id = %s AND type = %s"
        deliveries = f"SELECT id FROM deliveries WHERE event_id IN ({events})"
        # First lock the rows: a result the daemon is writing now (its attempt row refers to
        # the delivery) waits for this transaction instead of slipping in between the deletes.
        db.execute(f"{deliveries} FOR UPDATE", args)
        db.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN ({deliveries})", args)
        db.execute(f"DELETE FROM deliveries WHERE event_id IN ({events})", args)
        db.execute("DELETE FROM events WHERE job_id = %s AND type = %s", args)
        db.execute(
            "UPDATE watches SET state = 'active', finished_at = NULL, status = 10,"
            " next_poll_at = EXTRACT(EPOCH FROM now()), poll_key = EXTRACT(EPOCH FROM now())"
            " WHERE job_id = %s",
            (job_id,),
        )


def ids_at(rec: Receiver, path: str, job_id: str, event_type: str) -> list[str]:
    """The webhook-ids of the accepted requests about this job's event, in arrival order."""
    return [
        str(r.webhook_id)
        for r in rec.accepted(path)
        if r.payload["type"] == event_type and r.payload["data"]["id"] == job_id
    ]


def test_an_event_lost_in_a_failover_comes_again_with_its_webhook_id(
    tmp_path: Path, simulator: Simulator, receiver: ReceiverServer, pg_url: str
) -> None:
    config = base_config(
        tmp_path,
        simulator.url,
        receiver.url,
        state={"url": pg_url, "lease": "3s"},
        polling={"min_interval": "300ms", "max_interval": "1s", "give_up_after": "2s"},
    )
    config["endpoints"] = config["endpoints"][:2]  # ops (every event), analytics (successes)
    ws = Workspace(tmp_path, config, daemon_env(receiver.url))
    ws.write_config()
    ws.write_watch([])
    rec = receiver.receiver
    done = simulator.sim.add_job("failover01", queue_s=0.0, run_s=0.0, outcome=20)
    ws.cli("watch", "add", done)
    daemon = ws.start()
    daemon.wait_ready()

    succeeded = "lip_sync.succeeded"
    assert rec.wait_for_blocking(lambda r: ids_at(r, "/ops", done, succeeded), WAIT), daemon.output
    (first,) = ids_at(rec, "/ops", done, succeeded)

    lose_on_failover(pg_url, done, succeeded)
    assert rec.wait_for_blocking(lambda r: len(ids_at(r, "/ops", done, succeeded)) == 2, WAIT), (
        daemon.output
    )
    # Made again, under the same id, to every endpoint that had it; the receiver's own
    # count per webhook-id says it is the same event for the second time.
    assert ids_at(rec, "/ops", done, succeeded) == [first, first]
    assert rec.wait_for_blocking(
        lambda r: ids_at(r, "/analytics", done, succeeded) == [first, first], WAIT
    )
    again = [r for r in rec.accepted("/ops") if r.webhook_id == first]
    assert [r.attempt for r in again] == [1, 2]
    assert [e["event_id"] for e in ws.cli_json("events", "list")] == [first]

    # A watch given up, then reopened: its next event is a new one, with an id of its own.
    slow = simulator.sim.add_job("failover02", queue_s=0.0, run_s=1e6, outcome=20)
    ws.cli("watch", "add", slow)
    expired = "lip_sync.expired"
    assert rec.wait_for_blocking(lambda r: ids_at(r, "/ops", slow, expired), WAIT), daemon.output
    with simulator.sim._lock:
        simulator.sim._jobs[slow].run_s = 0.0  # it finishes after all
    ws.cli("watch", "add", "--reopen", slow)
    assert rec.wait_for_blocking(lambda r: ids_at(r, "/ops", slow, succeeded), WAIT), daemon.output
    (given_up,) = ids_at(rec, "/ops", slow, expired)
    (finished,) = ids_at(rec, "/ops", slow, succeeded)
    assert finished == job_event_id(slow, succeeded, 1) != job_event_id(slow, succeeded, 0)
    assert given_up == job_event_id(slow, expired, 0)

    # That one lost too (the expiry and the reopen had reached the replica): made again
    # under its own id, not the first incarnation's.
    lose_on_failover(pg_url, slow, succeeded)
    assert rec.wait_for_blocking(
        lambda r: ids_at(r, "/ops", slow, succeeded) == [finished, finished], WAIT
    ), daemon.output
    assert daemon.stop() == 0
