"""Issue 21, item 3, in the CLI: ``watch add --kind``, ``watch list`` with a KIND and a PHASE
column (``--json``: ``kind``, ``phase``) filtered by ``--kind``, ``watch show`` with the
vendor's own status, ``watch rm --kind``; an unknown kind is a usage error (exit 2) in the
kind table's words."""

from __future__ import annotations

from notifier.kinds import kind_problem
from notifier.models import Event, JobDetail, JobMemory
from notifier.store import Store
from tests.kit.cli_env import Env


def test_one_id_under_two_kinds_is_two_watches(env: Env) -> None:
    assert "1 new" in env.ok("watch", "add", "42").out
    assert "1 new" in env.ok("watch", "add", "42", "--kind", "video").out
    rows = env.json("watch", "list")
    assert sorted((r["kind"], r["job_id"], r["phase"]) for r in rows) == [
        ("lip_sync", "42", None),
        ("video", "42", None),
    ]
    assert [r["kind"] for r in env.json("watch", "list", "--kind", "video")] == ["video"]
    assert env.json("watch", "list", "--kind", "tts") == []

    assert env.ok("watch", "rm", "42", "--kind", "video").out.startswith("removed 1 of 1")
    assert [r["kind"] for r in env.json("watch", "list")] == ["lip_sync"]
    gone = env.run("watch", "rm", "42", "--kind", "video")
    assert gone.code == 1 and "no video watch for job 42" in gone.err


def test_list_shows_the_phase_and_show_the_vendors_status(env: Env) -> None:
    env.ok("watch", "add", "v1", "--kind", "video")
    with Store(env.state_path) as store:
        running = JobDetail("v1", 10, 40, "", create_time=1_700_000_000, kind="video")
        store.record_poll(running, store.now() + 5, store.now() + 5, JobMemory(added_at=0.0))
    table = env.ok("watch", "list").out.splitlines()
    assert table[0].split()[:5] == ["JOB_ID", "KIND", "STATE", "PHASE", "PROGRESS"]
    assert table[1].split()[:5] == ["v1", "video", "active", "running", "40"]

    shown = env.ok("watch", "show", "v1", "--kind", "video").out
    assert any(line.split() == ["status", "10"] for line in shown.splitlines())
    assert any(line.split() == ["phase", "running"] for line in shown.splitlines())
    row = env.ok("watch", "show", "v1", "--kind", "video", "--json").json()
    assert (row["kind"], row["status"], row["phase"]) == ("video", 10, "running")
    missing = env.run("watch", "show", "v1")
    assert missing.code == 1 and "no lip_sync watch for job v1" in missing.err


def test_an_unknown_kind_is_a_usage_error_in_the_kind_tables_words(env: Env) -> None:
    wording = kind_problem("vidoe")
    for args in (
        ("watch", "add", "j1", "--kind", "vidoe"),
        ("watch", "list", "--kind", "vidoe"),
        ("watch", "show", "j1", "--kind", "vidoe"),
        ("watch", "rm", "j1", "--kind", "vidoe"),
    ):
        result = env.run(*args)
        assert result.code == 2, args
        assert f"--kind: {wording}" in result.err, (args, result.err)
    assert env.json("watch", "list") == []


def test_events_list_filters_by_kind(env: Env) -> None:
    env.ok("watch", "add", "j1")
    env.ok("watch", "add", "j1", "--kind", "video")
    with Store(env.state_path) as store:
        for kind, status in (("video", 30), ("lip_sync", 20)):
            done = JobDetail("j1", status, 100, "", create_time=1_700_000_000, kind=kind)
            made = Event(f"evt_{kind}", "j1", f"{kind}.succeeded", store.now(), b"{}")
            assert store.record_terminal(done, made, [])
    assert [e["type"] for e in env.json("events", "list", "--kind", "video")] == ["video.succeeded"]
    assert len(env.json("events", "list")) == 2
    bad = env.run("events", "list", "--kind", "nope")
    assert bad.code == 2 and f"--kind: {kind_problem('nope')}" in bad.err
