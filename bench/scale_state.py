"""The scale benchmark's state files: active and finished watches, built with the Store
API and plain SQL, and what they hold."""

from __future__ import annotations

import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier.delivery.transition import build_event
from notifier.models import JobDetail, JobMemory, WatchSpec
from notifier.polling.policy import PollingSettings, plan_after_poll
from notifier.store import Store

QPS = 10
#: Jobs the poller picks per tick: about one second of budget (notifier.polling.poller.LOOKAHEAD).
PICK = QPS
#: Ids per list page (the vendor's largest page_size): what one sweep page looks up.
PAGE = 100
#: Deliveries an endpoint lane asks for at once (delivery.concurrency default).
LANE = 8
ENDPOINT = "ops"
#: Product defaults (docs/config.md).
MIN_INTERVAL_S = 5.0
MAX_INTERVAL_S = 120.0
GIVE_UP_AFTER_S = 86_400.0
#: Finished rows written through the Store API before switching to plain SQL.
API_FINISHED_ROWS = 20_000
#: Finished watches whose delivery stays pending, so ``due_deliveries`` has work to find.
PENDING_DELIVERIES = 100
#: Simulator jobs run this long: they stay active for the whole benchmark.
SIM_RUN_S = 36_000.0

#: Lip-sync's vendor status codes, for details made by hand (the vendor client reads them
#: with the kind table).
STATUS_GENERATING, STATUS_SUCCESS = 10, 20


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    finished: int
    decision_budget_s: float
    min_reps: int
    window_s: float
    idle_window_s: float


FULL = Settings(
    sizes=(1_000, 10_000, 100_000),
    finished=1_000_000,
    decision_budget_s=3.0,
    min_reps=30,
    window_s=15.0,
    idle_window_s=20.0,
)
QUICK = Settings(
    sizes=(1_000, 10_000, 100_000),
    finished=200_000,
    decision_budget_s=1.0,
    min_reps=15,
    window_s=8.0,
    idle_window_s=10.0,
)


# --------------------------------------------------------------------------- building state


def active_id(i: int) -> str:
    return f"job-{i:07d}"


def finished_id(i: int) -> str:
    return f"done-{i:07d}"


def running_detail(job_id: str, progress: int, create_time: int) -> JobDetail:
    return JobDetail(job_id, STATUS_GENERATING, progress, "", "", "", 0, create_time)


def polling_settings(active: int) -> PollingSettings:
    """The product defaults, with the round-robin cap the sweep would compute for ``active``."""
    fair = max(MIN_INTERVAL_S, active / QPS)
    return PollingSettings(MIN_INTERVAL_S, MAX_INTERVAL_S, GIVE_UP_AFTER_S, "adaptive", fair)


def add_active(store: Store, start: int, stop: int, rng: random.Random) -> float:
    """Watch ``job-start`` … ``job-(stop-1)`` and give each a polling history; seconds taken.

    ``Store.add_watches`` in one transaction, then one ``record_poll`` per watch with the
    policy's plan for a poll made 0-240 s ago (progress 1-90 %): the poll keys spread over
    the last few minutes and the next two, as in a daemon that has been running under a
    backlog (at 10 calls/s, 100k jobs are each looked at every few hours).
    """
    began = time.perf_counter()
    now = store.now()
    settings = polling_settings(stop)
    with store.transaction():
        store.add_watches([WatchSpec(active_id(i)) for i in range(start, stop)], "queue")
        for i in range(start, stop):
            polled_at = now - rng.uniform(0.0, 2 * MAX_INTERVAL_S)
            detail = running_detail(active_id(i), rng.randint(1, 90), int(polled_at) - 60)
            plan = plan_after_poll(JobMemory(added_at=now), detail, polled_at, settings)
            store.record_poll(detail, plan.earliest, plan.deadline, plan.memory)
    return time.perf_counter() - began


def _event_for(job_id: str, now: float) -> tuple[JobDetail, Any]:
    detail = JobDetail(
        job_id,
        STATUS_SUCCESS,
        100,
        "success",
        f"https://cdn.example.invalid/videos/{job_id}.mp4",
        f"https://cdn.example.invalid/videos/{job_id}.jpg",
        12_345,
        int(now) - 900,
    )
    return detail, build_event(detail, {"customer": "bench"}, now - 700, now - 710)


def add_finished_api(store: Store, start: int, stop: int, *, pending: bool = False) -> float:
    """Finished watches through the Store API: add, then ``record_terminal`` (event +
    delivery to ``ops``), then mark the delivery delivered unless ``pending``."""
    began = time.perf_counter()
    now = store.now()
    ids = [finished_id(i) for i in range(start, stop)]
    with store.transaction():
        store.add_watches([WatchSpec(job_id, {"customer": "bench"}) for job_id in ids], "queue")
        for job_id in ids:
            detail, event = _event_for(job_id, now)
            store.record_terminal(detail, event, [ENDPOINT])
        if not pending:  # every delivery of the store is due by then: mark ours delivered
            for due in store.due_deliveries(ENDPOINT, now + 3600, stop - start):
                store.delivery_succeeded(due.id, 200)
    return time.perf_counter() - began


def add_finished_sql(path: Path, start: int, stop: int, now: float, chunk: int = 100_000) -> float:
    """Set-up only: the same rows as :func:`add_finished_api`, inserted with plain SQL."""
    began = time.perf_counter()
    _, template = _event_for("@@ID@@", now)
    body_parts = template.body.split(b"@@ID@@")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        for lo in range(start, stop, chunk):
            hi = min(stop, lo + chunk)
            ids = [finished_id(i) for i in range(lo, hi)]
            eids = [f"evt_{i:016x}" for i in range(lo, hi)]
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO watches (job_id, source, labels, state, status, progress, msg,"
                " create_time, added_at, last_poll_at, polls, finished_at)"
                " VALUES (?, 'queue', '{\"customer\": \"bench\"}', 'succeeded', 20, 100,"
                " 'success', ?, ?, ?, 3, ?)",
                ((job_id, int(now) - 900, now - 800, now - 700, now - 700) for job_id in ids),
            )
            db.executemany(
                "INSERT INTO events (event_id, job_id, type, created_at, body,"
                " last_seen_running_at) VALUES (?, ?, 'lip_sync.succeeded', ?, ?, ?)",
                (
                    (eid, job_id, now - 700, job_id.encode().join(body_parts), now - 710)
                    for eid, job_id in zip(eids, ids, strict=True)
                ),
            )
            db.executemany(
                "INSERT INTO deliveries (event_id, endpoint, state, attempts, created_at,"
                " last_attempt_at, last_status, delivered_at)"
                " VALUES (?, ?, 'delivered', 1, ?, ?, 200, ?)",
                ((eid, ENDPOINT, now - 700, now - 699, now - 699) for eid in eids),
            )
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return time.perf_counter() - began


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file (so the file can be copied)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table and active watches (read-only, for the report)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {
            table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("watches", "events", "deliveries")
        }
        out["active"] = int(
            db.execute("SELECT COUNT(*) FROM watches WHERE state = 'active'").fetchone()[0]
        )
        return out
    finally:
        db.close()


def total_polls(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        value = db.execute("SELECT SUM(polls) FROM watches WHERE state = 'active'").fetchone()[0]
        return int(value or 0)
    finally:
        db.close()
