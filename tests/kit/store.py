"""The store as tests open it: job details and events to record, and rows written as older
versions wrote them."""

from __future__ import annotations

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
