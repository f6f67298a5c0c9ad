"""The real daemon process against the simulator and a real receiver, over real HTTP."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from typing import Any

import pytest

from notifier.models import WatchSpec
from notifier.store import Store
from notifier.tools.receiver import Receiver
from tests.kit import (
    SLACK_PATH,
    TRACED,
    ReceiverServer,
    Simulator,
    Workspace,
    secrets_for,
)

pytestmark = pytest.mark.slow


def _payloads(rec: Receiver, path: str) -> list[dict[str, Any]]:
    return [r.payload for r in rec.accepted(path)]


def _ids(rec: Receiver, path: str) -> Counter[str]:
    return Counter(p["data"]["id"] for p in _payloads(rec, path))


def _add_jobs(
    sim: Simulator, n: int, *, failed_every: int = 3, prefix: str = "job"
) -> dict[str, int]:
    """Jobs with short, varied timelines; every ``failed_every``-th one fails."""
    outcomes = {}
    for i in range(n):
        outcome = 30 if i % failed_every == failed_every - 1 else 20
        job_id = sim.sim.add_job(
            f"{prefix}{i:02d}",
            queue_s=0.2 + 0.1 * (i % 3),
            run_s=0.5 + 0.2 * (i % 4),
            outcome=outcome,
            msg="insufficient balance" if outcome == 30 else None,
        )
        outcomes[job_id] = outcome
    return outcomes


def _expected(outcomes: dict[str, int]) -> tuple[set[str], set[str]]:
    ok = {j for j, o in outcomes.items() if o == 20}
    return ok, set(outcomes) - ok


@pytest.mark.realtime  # counts the vendor budget
def test_every_callback_arrives_once_per_endpoint(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    outcomes = _add_jobs(simulator, 12)
    jobs = sorted(outcomes)
    from_file, from_cli = jobs[:6], jobs[6:]
    workspace.write_watch(
        [from_file[0], {"id": from_file[1], "labels": {"customer": "acme"}}, *from_file[2:]]
    )
    workspace.cli("watch", "add", *from_cli, "--label", "batch=b7", "--label", "team=video")

    daemon = workspace.start()
    daemon.wait_ready()
    ok, failed = _expected(outcomes)
    rec = receiver.receiver

    def all_arrived(r: Receiver) -> bool:
        return (
            set(_ids(r, "/ops")) == set(jobs)
            and set(_ids(r, "/analytics")) == ok
            and len(r.accepted(SLACK_PATH)) >= len(failed)
        )

    assert rec.wait_for_blocking(all_arrived, timeout=60), rec.summary()
    watches = workspace.cli_json("watch", "list")
    assert len(watches) == 12
    assert {w["state"] for w in watches} == {"succeeded", "failed"}
    deliveries = workspace.cli_json("deliveries", "list")
    assert all(d["state"] == "delivered" for d in deliveries)
    assert len(deliveries) == 12 + len(ok) + len(failed)

    assert daemon.stop(signal.SIGTERM) == 0

    # Exactly once per endpoint, every signature verified, right types and data.
    assert _ids(rec, "/ops") == Counter(jobs)
    assert _ids(rec, "/analytics") == Counter(ok)
    slack_texts = [p["text"] for p in _payloads(rec, SLACK_PATH)]
    assert len(slack_texts) == len(failed)
    assert all(any(j in t for j in failed) for t in slack_texts)
    for record in rec.all("/ops") + rec.all("/analytics"):
        assert record.verified is True
    for payload in _payloads(rec, "/ops"):
        job = payload["data"]["id"]
        expected_type = "lip_sync.succeeded" if outcomes[job] == 20 else "lip_sync.failed"
        assert payload["type"] == expected_type
        assert payload["data"]["status"] == outcomes[job]
        assert payload["timestamp"].endswith("Z")
        if outcomes[job] == 20:
            assert payload["data"]["progress"] == 100
            assert payload["data"]["video_url"].startswith("https://")
        else:
            assert payload["data"]["msg"] == "insufficient balance"
        if job in from_cli:
            assert payload["data"]["labels"] == {"batch": "b7", "team": "video"}
        elif job == from_file[1]:
            assert payload["data"]["labels"] == {"customer": "acme"}
        else:
            assert payload["data"]["labels"] == {}
    # The same event id goes to every endpoint.
    ops_ids = {r.payload["data"]["id"]: r.webhook_id for r in rec.accepted("/ops")}
    for r in rec.accepted("/analytics"):
        assert ops_ids[r.payload["data"]["id"]] == r.webhook_id
    events = workspace.cli_json("events", "list")
    assert {e["event_id"] for e in events} == set(ops_ids.values())

    stats = simulator.sim.stats()
    if not TRACED:
        assert stats["codes"].get("40001", 0) == 0
        assert stats["max_per_second"] <= 10
    everything = daemon.output + "".join(
        workspace.cli(*c).stdout for c in (("watch", "list"), ("deliveries", "list"))
    )
    for secret in secrets_for(receiver.url):
        assert secret not in everything


@pytest.mark.realtime  # counts the vendor budget
def test_faults_crash_and_restart_lose_nothing(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    simulator.sim.set_faults(fault_50000=0.2, fault_html=0.05)
    rec = receiver.receiver
    rec.script("/ops", [500, 500])
    rec.script("/analytics", [(429, {"Retry-After": "1"})])
    outcomes = _add_jobs(simulator, 10)
    jobs = sorted(outcomes)
    workspace.cli("watch", "add", *jobs)
    ok, _failed = _expected(outcomes)

    daemon = workspace.start()
    daemon.wait_ready()
    # Kill -9 once a few deliveries have been attempted and failed.
    assert rec.wait_for_blocking(lambda r: len(r.all("/ops")) >= 4, timeout=30), rec.summary()
    simulator.sim.revoke_token()
    daemon.kill9()

    restarted = workspace.start()
    restarted.wait_ready()

    def all_arrived(r: Receiver) -> bool:
        return set(_ids(r, "/ops")) == set(jobs) and set(_ids(r, "/analytics")) == ok

    assert rec.wait_for_blocking(all_arrived, timeout=90), rec.summary()
    assert restarted.stop() == 0

    # At-least-once, and each event keeps one webhook-id across retries and the crash.
    by_job: dict[str, set[str]] = {}
    for r in rec.all("/ops") + rec.all("/analytics"):
        assert r.verified is True
        by_job.setdefault(r.payload["data"]["id"], set()).add(str(r.webhook_id))
    assert all(len(ids) == 1 for ids in by_job.values()), by_job
    assert len(workspace.cli_json("events", "list")) == len(jobs)
    stats = simulator.sim.stats()
    assert stats["tokens_issued"] >= 2  # the revoked token was replaced
    if not TRACED:
        assert stats["max_per_second"] <= 10


def _between(records: list[dict[str, Any]], first: str, last: str) -> list[str]:
    """Events logged after the last ``first`` record and before the ``last`` that follows."""
    events = [str(r.get("event")) for r in records]
    start = len(events) - 1 - events[::-1].index(first)
    end = events.index(last, start)
    return events[start + 1 : end]


def test_reload_on_sighup_picks_up_new_watch_file_entry(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    # The 2 s tick has read the (empty) file once; it logs again only when the file changes.
    assert daemon.wait_for_log(lambda r: r.get("event") == "watch file loaded", timeout=10)
    job = simulator.sim.add_job("reload01", queue_s=0.1, run_s=0.3, outcome=20)
    workspace.write_watch([job])
    daemon.popen.send_signal(signal.SIGHUP)
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: job in _ids(r, "/ops"), timeout=30), daemon.output
    assert daemon.wait_for_log(lambda r: r.get("event") == "reloaded", timeout=10)
    # A second SIGHUP with the file unchanged: only a forced re-read (SIGHUP's) logs it, the
    # tick sees nothing new. So this fails if SIGHUP left the watch file to the tick.
    loaded = sum(1 for r in daemon.records() if r.get("event") == "watch file loaded")
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(
        lambda _r: sum(1 for x in daemon.records() if x.get("event") == "reloaded") == 2,
        timeout=10,
    ), daemon.output
    assert "watch file loaded" in _between(daemon.records(), "reloading", "reloaded")
    reread = [r for r in daemon.records() if r.get("event") == "watch file loaded"][loaded:]
    assert [(r["added"], r["total"]) for r in reread] == [(0, 1)]
    assert daemon.stop() == 0


def test_broken_reload_keeps_running_config(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    good = workspace.config_path.read_text()
    workspace.config_path.write_text(good.replace("qps: 10", "qps: 0"))
    daemon.popen.send_signal(signal.SIGHUP)
    assert daemon.wait_for_log(
        lambda r: r.get("event", "").startswith("new config is invalid"), timeout=10
    ), daemon.output
    job = simulator.sim.add_job("afterbad1", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(job)  # the CLI would refuse the broken config; other programs don't
    assert receiver.receiver.wait_for_blocking(lambda r: job in _ids(r, "/ops"), timeout=30)
    assert daemon.stop() == 0
    problems = [r for r in daemon.records() if r.get("event", "").startswith("new config")]
    assert "chanjing.qps" in json.dumps(problems)


def test_invalid_queue_rows_are_kept_with_a_reason(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    import sqlite3

    job = simulator.sim.add_job("sqlqueue1", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.enqueue_sql(job, labels='{"source": "sql"}')
    workspace.enqueue_sql("bad id with spaces")
    workspace.enqueue_sql("okid", labels="not json")
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: job in _ids(r, "/ops"), timeout=30), daemon.output
    assert _payloads(rec, "/ops")[0]["data"]["labels"] == {"source": "sql"}
    assert daemon.stop() == 0
    with sqlite3.connect(workspace.state_path) as db:
        rejected = db.execute(
            "SELECT job_id, rejected FROM watch_queue WHERE rejected IS NOT NULL ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in rejected] == ["bad id with spaces", "okid"]
    assert "invalid job id" in rejected[0][1]
    assert "labels is not valid JSON" in rejected[1][1]
    errors = [r for r in daemon.records() if r.get("event", "").startswith("queue row rejected")]
    assert len(errors) == 2


def test_unknown_job_is_retried_and_reported_in_watch_list(
    workspace: Workspace, simulator: Simulator
) -> None:
    # One 40000 does not fail the watch (the vendor may not know a new job for a moment);
    # three over two minutes do (tests/integration/polling/test_rejected_ids.py).
    workspace.cli("watch", "add", "doesnotexist0001")
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(
        lambda r: (
            r.get("job_id") == "doesnotexist0001"
            and r.get("event") == "vendor rejected the job id; will ask again"
        ),
        timeout=20,
    ), daemon.output
    assert daemon.stop() == 0
    (watch,) = workspace.cli_json("watch", "list")
    assert watch["state"] == "active"
    assert watch["msg"].startswith("vendor rejected the id ")
    assert watch["rejections"] >= 1
    assert workspace.cli_json("events", "list") == []


def test_an_id_the_vendor_keeps_rejecting_is_reported_as_rejected(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    # Issue 18, item 7b: a mistyped id ended `failed` with no event, so the application
    # waited forever. Its state starts as two rejections ago over two minutes (not to wait
    # REJECT_WINDOW here): the daemon's next look rejects it, and the endpoints that take the
    # default events get a lip_sync.rejected webhook with the vendor's answer.
    now = time.time()
    with Store(workspace.state_path, clock=lambda: now - 200) as store:
        store.add_watches([WatchSpec("doesnotexist0002", {"order": "o-7"})], "cli")
        store.record_rejection("doesnotexist0002", "record not found", now - 195, 120)
    with Store(workspace.state_path, clock=lambda: now - 195) as store:
        store.record_rejection("doesnotexist0002", "record not found", now - 190, 120)
    daemon = workspace.start()
    daemon.wait_ready()
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: bool(r.accepted("/ops")), timeout=30), daemon.output
    assert daemon.stop() == 0
    (sent,) = rec.accepted("/ops")
    assert sent.payload["type"] == "lip_sync.rejected"
    data = sent.payload["data"]
    assert (data["id"], data["msg"], data["rejections"]) == (
        "doesnotexist0002",
        "record not found",
        3,
    )
    assert data["labels"] == {"order": "o-7"}
    # analytics takes successes only, team (Slack) failures only.
    assert rec.all("/analytics") == [] and rec.all(SLACK_PATH) == []
    (event,) = workspace.cli_json("events", "list")
    assert (event["event_id"], event["type"]) == (sent.webhook_id, "lip_sync.rejected")
    (watch,) = workspace.cli_json("watch", "list", "--state", "rejected")
    assert watch["job_id"] == "doesnotexist0002"
    assert watch["msg"].startswith("unknown to the vendor: record not found (3x in ")
    assert any(
        r.get("event") == "vendor does not know this job; no longer polled"
        for r in daemon.records()
    )


@pytest.mark.realtime
def test_slow_endpoint_does_not_delay_others_and_stop_is_prompt(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    import time

    rec = receiver.receiver
    rec.set_delay("/analytics", 60)  # answers long after our 3 s timeout
    outcomes = _add_jobs(simulator, 6, failed_every=100)  # all succeed: analytics wants all
    workspace.cli("watch", "add", *outcomes)
    daemon = workspace.start()
    daemon.wait_ready()
    assert rec.wait_for_blocking(lambda r: set(_ids(r, "/ops")) == set(outcomes), timeout=30), (
        rec.summary()
    )
    # The slow receiver got its attempts (in flight or timed out), none completed.
    assert rec.wait_for_blocking(lambda r: len(r.all("/analytics")) >= 1, timeout=30)
    delivered = workspace.cli_json("deliveries", "list", "--state", "delivered")
    assert {d["endpoint"] for d in delivered} == {"ops"}
    started = time.monotonic()
    assert daemon.stop() == 0
    # Bounded by the 5 s grace (plus a slow machine's start-up of the exit), far from the
    # 60 s the slow receiver would take.
    assert time.monotonic() - started < 30
    pending = workspace.cli_json("deliveries", "list", "--state", "pending")
    assert {d["endpoint"] for d in pending} == {"analytics"}
    assert len(pending) == len(outcomes)


def test_watch_file_followed_without_signal_and_broken_file_keeps_previous(
    workspace: Workspace, simulator: Simulator, receiver: ReceiverServer
) -> None:
    first = simulator.sim.add_job("file0001", queue_s=0.1, run_s=30, outcome=20)
    workspace.write_watch([first])
    daemon = workspace.start()
    daemon.wait_ready()
    assert daemon.wait_for_log(lambda r: r.get("event") == "watch file loaded", timeout=10)
    workspace.watch_path.write_text("- file0001\n- {id: [broken\n")
    assert daemon.wait_for_log(
        lambda r: r.get("event", "").startswith("watch file is invalid"), timeout=15
    ), daemon.output
    second = simulator.sim.add_job("file0002", queue_s=0.1, run_s=0.2, outcome=20)
    workspace.write_watch([first, second])
    assert receiver.receiver.wait_for_blocking(lambda r: second in _ids(r, "/ops"), timeout=30), (
        daemon.output
    )
    assert daemon.stop() == 0
    states = {w["job_id"]: w["state"] for w in workspace.cli_json("watch", "list")}
    assert states == {first: "active", second: "succeeded"}
    invalid = [r for r in daemon.records() if r.get("event", "").startswith("watch file is inv")]
    assert len(invalid) == 1  # reported once per broken content, not every tick
    assert "YAML" in json.dumps(invalid[0]) or "yaml" in json.dumps(invalid[0])
