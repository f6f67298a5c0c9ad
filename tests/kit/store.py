"""The store as tests open it: job details and events to record, and rows written as older
versions wrote them."""

from __future__ import annotations

import json
from collections.abc import Callable

from notifier.models import Event, JobDetail
from notifier.store import Store

#: What the ``make_store`` fixture hands out: ``make(**kwargs)`` opens a store on the test's
#: state (each call a new connection).
StoreFactory = Callable[..., Store]


def fail_as_before(store: Store, job_id: str, reason: str) -> None:
    """End a watch as the vendor's rejection of its id did before the ``rejected`` state
    (issue 18, item 7b): ``failed``, ``reason`` as its note, no event. Such rows stay in
    users' databases, and everything must still read them."""
    unseen = dict.fromkeys(("status", "phase", "progress", "create_time", "last_data"))
    args = {**unseen, "job_id": job_id, "msg": reason, "error": reason, "now": store.now()}
    args["kind"], args["account"] = "lip_sync", "default"
    with store.transaction():
        store._run("finish_watch", {**args, "state": "failed", "polled": 1, "observed": 0})


def detail(job_id: str, status: int, progress: int = 0) -> JobDetail:
    return JobDetail(job_id, status, progress, "ok", "", "", 0, 1_700_000_000)


def event(job_id: str, type_: str = "lip_sync.succeeded", event_id: str | None = None) -> Event:
    return Event(event_id or f"evt_{job_id}_{type_}", job_id, type_, 1.0, b"{}")


#: The accounts :func:`record_account_events` interleaves, each round (None: an event of no
#: account, as the daemon's own).
EVENT_ACCOUNTS: tuple[str | None, ...] = ("media", "shop", "media", None)


def record_account_events(
    store: Store, rounds: int
) -> tuple[dict[str | None, list[str]], list[str]]:
    """Events of shop, media and of no account, interleaved (:data:`EVENT_ACCOUNTS` each
    round), through the store's own insert: their ids by account, and all in the recorded
    order."""
    by_account: dict[str | None, list[str]] = {account: [] for account in EVENT_ACCOUNTS}
    recorded: list[str] = []
    for n in range(rounds):
        for account in EVENT_ACCOUNTS:
            event_id = f"evt_{account or 'none'}_{n:04d}_{len(by_account[account])}"
            body = {
                "type": "lip_sync.succeeded",
                "timestamp": "2026-11-28T12:00:00Z",
                "data": {"id": event_id, "status": 20},
            }
            raw = json.dumps(body).encode()
            event = Event(event_id, event_id, "lip_sync.succeeded", 1.0, raw, account=account)
            store.record_operational(event, [])
            by_account[account].append(event_id)
            recorded.append(event_id)
    return by_account, recorded
