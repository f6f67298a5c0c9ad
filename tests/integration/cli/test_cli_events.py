"""The command line on recorded events and deliveries, its usage (help, version, exit 2), and
the real entry points (``python -m notifier``, the console script) as child processes."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from notifier.cli import CONFIG_ENV, main
from notifier.delivery.transition import build_event
from notifier.models import JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import Workspace
from tests.kit.cli_env import Env, _console_script, _run, _subprocess_env

# ------------------------------------------------------------------------------ events, deliveries


def _record_event(state_path: Path, job_id: str, status: int = 20) -> tuple[str, list[int]]:
    """A terminal event with deliveries to ops and team, via the store API (as the daemon)."""
    detail = JobDetail(
        id=job_id,
        status=status,
        progress=100,
        msg="success" if status == 20 else "failed",
        video_url="https://cdn.example.com/v.mp4",
        preview_url="https://cdn.example.com/p.jpg",
        duration=12345,
        create_time=1738636800,
    )
    with Store(state_path) as store:
        store.add_watches([WatchSpec(job_id, {"customer": "acme"})], "cli")
        event = build_event(detail, {"customer": "acme"}, store.now())
        assert store.record_terminal(detail, event, ["ops", "team"])
        ids = [d["id"] for d in store.list_deliveries() if d["event_id"] == event.event_id]
    return event.event_id, ids


def _kill_deliveries(state_path: Path, ids: list[int]) -> None:
    with Store(state_path) as store:
        for delivery_id in ids:
            store.delivery_failed(delivery_id, 500, "HTTP 500", None)


def test_empty_store_lists(env: Env) -> None:
    assert env.json("events", "list") == []
    assert env.json("deliveries", "list") == []
    for state in ("pending", "delivered", "dead"):
        assert env.json("deliveries", "list", "--state", state) == []
    assert env.json("watch", "list") == []
    # Says so, rather than printing nothing (or a header over nothing).
    for command in (("events", "list"), ("deliveries", "list"), ("watch", "list")):
        assert env.ok(*command).out.strip() == "(none)", command


def test_events_and_deliveries(env: Env) -> None:
    env.ok("watch", "list")  # creates the state file
    event_id, delivery_ids = _record_event(env.state_path, "job-done")

    events = env.json("events", "list")
    assert len(events) == 1
    assert {"event_id", "account", "job_id", "type", "created_at"} <= events[0].keys()
    assert events[0]["event_id"] == event_id
    assert events[0]["job_id"] == "job-done"
    assert events[0]["type"] == "lip_sync.succeeded"
    table = env.ok("events", "list").out.splitlines()
    assert table[0].split() == ["EVENT_ID", "ACCOUNT", "JOB_ID", "TYPE", "CREATED_AT"]
    assert event_id in table[1]

    rows = env.json("deliveries", "list")
    assert sorted(r["endpoint"] for r in rows) == ["ops", "team"]
    assert {r["state"] for r in rows} == {"pending"}
    assert {r["event_id"] for r in rows} == {event_id}
    assert env.json("deliveries", "list", "--state", "dead") == []
    table = env.ok("deliveries", "list").out.splitlines()
    assert table[0].split()[:5] == ["ID", "EVENT_ID", "JOB_ID", "ENDPOINT", "STATE"]
    assert len(table) == 3

    watch = env.json("watch", "list", "--state", "succeeded")
    assert [(w["job_id"], w["status"], w["progress"]) for w in watch] == [("job-done", 20, 100)]

    _kill_deliveries(env.state_path, delivery_ids)
    dead = env.json("deliveries", "list", "--state", "dead")
    assert sorted(r["id"] for r in dead) == sorted(delivery_ids)
    assert {r["last_status"] for r in dead} == {500}
    assert {r["last_error"] for r in dead} == {"HTTP 500"}
    assert env.json("deliveries", "list", "--state", "pending") == []

    out = env.ok("deliveries", "replay", "--dead").out
    assert out.strip() == "replaying 2 dead delivery(ies)"
    assert env.json("deliveries", "list", "--state", "dead") == []
    pending = env.json("deliveries", "list", "--state", "pending")
    assert sorted(r["id"] for r in pending) == sorted(delivery_ids)

    # Replay by event id: a delivered one goes back to pending, from the first attempt.
    with Store(env.state_path) as store:
        store.delivery_succeeded(delivery_ids[0], 200)
    assert env.json("deliveries", "list", "--state", "delivered")[0]["id"] == delivery_ids[0]
    out = env.ok("deliveries", "replay", event_id).out
    assert out.strip() == "replaying 2 delivery(ies) of 1 event(s)"
    again = env.json("deliveries", "list", "--state", "pending")
    assert sorted(r["id"] for r in again) == sorted(delivery_ids)
    assert {r["attempts"] for r in again} == {0}
    assert env.json("deliveries", "list", "--state", "delivered") == []
    # A second --dead with nothing dead.
    assert env.ok("deliveries", "replay", "--dead").out.strip() == "replaying 0 dead delivery(ies)"
    # An unknown event id is reported and fails.
    missing = env.run("deliveries", "replay", "evt_nosuch")
    assert missing.code == 1
    assert "no deliveries for event evt_nosuch" in missing.err
    assert missing.out.strip() == "replaying 0 delivery(ies) of 0 event(s)"


def test_replay_usage_errors(env: Env) -> None:
    neither = env.run("deliveries", "replay")
    assert neither.code == 2
    assert "EVENT_ID" in neither.err and "--dead" in neither.err
    both = env.run("deliveries", "replay", "evt_x", "--dead")
    assert both.code == 2


def test_replay_unknown_event(env: Env) -> None:
    env.ok("watch", "list")
    event_id, _ids = _record_event(env.state_path, "job-known", status=30)
    result = env.run("deliveries", "replay", "evt_doesnotexist")
    assert result.code == 1
    assert "evt_doesnotexist" in result.err
    # A known and an unknown id: the known one is replayed, the exit still says "not all".
    result = env.run("deliveries", "replay", event_id, "evt_doesnotexist")
    assert result.code == 1
    assert "evt_doesnotexist" in result.err and event_id not in result.err


def test_deliveries_list_bad_state(env: Env) -> None:
    result = env.run("deliveries", "list", "--state", "lost")
    assert result.code == 2
    assert "pending" in result.err and "dead" in result.err


@pytest.mark.parametrize("filled", [False, True], ids=["empty", "filled"])
@pytest.mark.parametrize(
    "args",
    [
        ["watch", "list"],
        ["watch", "list", "--state", "active"],
        ["events", "list"],
        ["deliveries", "list"],
        ["deliveries", "list", "--state", "pending"],
    ],
    ids=lambda a: "-".join(a).replace("--", ""),
)
def test_json_is_an_array_of_objects(env: Env, args: list[str], filled: bool) -> None:
    if filled:
        env.ok("watch", "add", "job-active")
        _record_event(env.state_path, "job-finished")
    rows = env.json(*args)
    assert (len(rows) > 0) == filled
    # --json may also go before the filters.
    before = env.ok(*args[:2], "--json", *args[2:]).json()
    assert before == rows


# ------------------------------------------------------------------------------ usage


HELP_CASES: list[tuple[list[str], list[str]]] = [
    ([], ["run", "check", "watch", "events", "deliveries", "simulate", "demo", "--config"]),
    (["run"], ["usage"]),
    (["check"], ["usage"]),
    (["watch"], ["add", "list", "rm"]),
    (["watch", "add"], ["ID", "--label", "--endpoint"]),
    (["watch", "list"], ["--json", "--state", "active", "expired"]),
    (["watch", "rm"], ["ID"]),
    (["events"], ["list"]),
    (["events", "list"], ["--json"]),
    (["deliveries"], ["list", "replay"]),
    (["deliveries", "list"], ["--json", "--state", "pending", "delivered", "dead"]),
    (["deliveries", "replay"], ["EVENT_ID", "--dead"]),
    (["simulate"], ["--port", "--qps", "--jobs"]),
    (["demo"], ["usage"]),
]


@pytest.mark.parametrize(
    ("args", "expected"), HELP_CASES, ids=[" ".join(a) or "top" for a, _ in HELP_CASES]
)
def test_help(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: list[str],
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chanjing-notifier")
    for word in expected:
        assert word in out, f"{word!r} not in help of {args}:\n{out}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from notifier import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["frobnicate"], "invalid choice"),
        (["watch", "frobnicate"], "invalid choice"),
        (["events", "rm"], "invalid choice"),
        (["deliveries", "list", "--bogus"], "unrecognized arguments"),
        (["watch"], "missing action"),
        (["events"], "missing action"),
        (["deliveries"], "missing action"),
        (["watch", "add"], "required"),
        (["simulate", "--port", "eighty"], "invalid int value"),
    ],
)
def test_bad_usage_is_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


# ------------------------------------------------------------------------------ real entry points


def test_console_script(env: Env) -> None:
    script = str(_console_script())
    penv = _subprocess_env()
    ok = _run([script, "-c", str(env.config_path), "check"], penv)
    assert ok.code == 0 and "OK" in ok.out

    helped = _run([script, "--help"], penv)
    assert helped.code == 0 and "deliveries" in helped.out
    assert _run([script, "frobnicate"], penv).code == 2

    config = copy.deepcopy(env.config)
    config["polling"]["min_intervall"] = "5s"
    env.write(config)
    bad = _run([script, "-c", str(env.config_path), "check"], penv)
    assert bad.code == 2
    assert "polling.min_intervall" in bad.err and str(env.config_path) in bad.err


def test_python_dash_m(env: Env) -> None:
    penv = _subprocess_env()
    nothing = _run([sys.executable, "-m", "notifier", "check"], penv)
    assert nothing.code == 2 and CONFIG_ENV in nothing.err

    penv = _subprocess_env(**{CONFIG_ENV: str(env.config_path)})
    added = _run(
        [sys.executable, "-m", "notifier", "watch", "add", "sub-1", "--label", "a=b"], penv
    )
    assert added.code == 0, added.all
    listed = _run([sys.executable, "-m", "notifier", "watch", "list", "--json"], penv)
    assert listed.code == 0
    rows = json.loads(listed.out)
    assert [(r["job_id"], r["labels"]) for r in rows] == [("sub-1", {"a": "b"})]
    gone = _run([sys.executable, "-m", "notifier", "watch", "rm", "nope-1"], penv)
    assert gone.code == 1 and "nope-1" in gone.err


def test_harness_workspace(workspace: Workspace) -> None:
    """The conftest workspace (what the daemon tests use) passes check and lists as JSON."""
    assert "OK" in workspace.cli("check").stdout
    workspace.cli("watch", "add", "ws-job-1")
    assert [r["job_id"] for r in workspace.cli_json("watch", "list")] == ["ws-job-1"]
    assert workspace.cli_json("events", "list") == []


def test_simulate_subprocess(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifier", "simulate", "--port", "0", "--jobs", "2"],
        env=_subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # only fires if the simulator hangs
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                break
        assert lines and "listening on" in lines[-1], "".join(lines)
        url = lines[-1].split("listening on ", 1)[1].split()[0]
        answer = httpx.post(
            f"{url}/open/v1/access_token",
            json={"app_id": "demo-app", "secret_key": "demo-secret"},
            timeout=10,
        ).json()
        assert answer["code"] == 0 and answer["data"]["access_token"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_replay_routes_each_event_by_its_account(workspace: Workspace) -> None:
    """An event whose routing found no endpoint gets the endpoints its account's events go
    to now: an endpoint limited to another account is not one of them."""
    good = workspace.config.pop("chanjing")
    workspace.config["accounts"] = [
        {"name": "default", **good},
        {"name": "shop", **good, "app_id": "shop-app"},
    ]
    ops, analytics = workspace.config["endpoints"][:2]
    analytics.update(events=["*"], accounts=["shop"])
    workspace.config["endpoints"] = [ops, analytics]
    workspace.write_config()
    ids = {}
    with Store(workspace.state_path) as store:
        store.add_watches([WatchSpec("job-1"), WatchSpec("job-1", account="shop")], "cli")
        for account in ("default", "shop"):
            detail = JobDetail("job-1", 20, 100, "success", account=account)
            event = build_event(detail, {}, store.now())
            assert store.record_terminal(detail, event, [])  # no endpoint took it then
            ids[account] = event.event_id
    out = workspace.cli("deliveries", "replay", ids["default"], ids["shop"]).stdout
    assert out.strip() == "replaying 3 delivery(ies) of 2 event(s)"
    routed = {(d["event_id"], d["endpoint"]) for d in workspace.cli_json("deliveries", "list")}
    assert routed == {
        (ids["default"], "ops"),
        (ids["shop"], "ops"),
        (ids["shop"], "analytics"),
    }
    shown = workspace.cli("deliveries", "show", ids["shop"]).stdout
    assert "account shop" in shown.splitlines()[0]
