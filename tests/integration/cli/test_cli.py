"""The command line as users and an acceptance harness use it.

Most tests call ``notifier.cli.main([...])`` in-process (fast, with ``capsys``); a few run the
real entry points (``python -m notifier`` and the ``chanjing-notifier`` console script) as
child processes to prove they wire up exit codes and output the same way.
Nothing here sleeps: subprocesses are awaited, servers are read line by line.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from notifier.cli import CONFIG_ENV, main
from notifier.delivery.transition import build_event
from notifier.models import JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import Workspace, fail_as_before

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_CONFIG = REPO / "config.example.yaml"

# Distinctive secret values: none of them may ever show up in anything the CLI prints.
VENDOR_SECRET = "sk-cli-DISTINCT-vendor-secret-4f7a9c21"
OPS_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
SLACK_URL = "https://hooks.slack.com/services/T0CLI/B0CLI/slackDISTINCTsecret93b1"
SECRET_VALUES = (
    VENDOR_SECRET,
    OPS_SECRET,
    OPS_SECRET.removeprefix("whsec_"),
    SLACK_URL,
    "slackDISTINCTsecret93b1",
)

WATCH_COLUMNS = {"job_id", "state", "status", "progress", "labels", "last_poll_at", "next_poll_at"}


# ------------------------------------------------------------------------------ helpers


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _assert_clean(result: Result) -> None:
    """No traceback and no secret value anywhere in the output."""
    assert "Traceback" not in result.all, result.all
    for value in SECRET_VALUES:
        assert value not in result.all, f"secret leaked: {result.all}"


@dataclass
class Env:
    """A config built from ``config.example.yaml``, the environment it needs, and a runner."""

    tmp_path: Path
    config: dict[str, Any]
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def config_path(self) -> Path:
        return self.tmp_path / "config.yaml"

    @property
    def watch_path(self) -> Path:
        return self.tmp_path / "watch.yaml"

    @property
    def state_path(self) -> Path:
        return self.tmp_path / "state" / "state.db"

    def write(self, config: dict[str, Any] | None = None) -> Path:
        self.config_path.write_text(yaml.safe_dump(config or self.config, sort_keys=False))
        return self.config_path

    def run(self, *args: str, config: Path | None = None) -> Result:
        """``chanjing-notifier -c CONFIG ARGS…`` in-process; output captured."""
        self.capsys.readouterr()  # drop anything earlier
        code = main(["-c", str(config or self.config_path), *args])
        captured = self.capsys.readouterr()
        result = Result(code, captured.out, captured.err)
        _assert_clean(result)
        return result

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.code == 0, result.all
        return result

    def json(self, *args: str) -> list[dict[str, Any]]:
        rows = self.ok(*args, "--json").json()
        assert isinstance(rows, list)
        assert all(isinstance(row, dict) for row in rows)
        return rows


def _example_config(tmp_path: Path, base_url: str) -> dict[str, Any]:
    """The repository's example config, made local: state, watch file and vendor under test."""
    config: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    assert config["chanjing"]["secret_key"] == "${CHANJING_SECRET_KEY}"
    config["chanjing"]["base_url"] = base_url
    config["state"]["path"] = str(tmp_path / "state" / "state.db")
    (tmp_path / "state").mkdir(exist_ok=True)  # only the default directory is created
    config["watch"]["file"] = str(tmp_path / "watch.yaml")
    return config


def _secret_env() -> dict[str, str]:
    return {
        "CHANJING_APP_ID": "cli-test-app",
        "CHANJING_SECRET_KEY": VENDOR_SECRET,
        "OPS_WEBHOOK_SECRET": OPS_SECRET,
        "SLACK_WEBHOOK_URL": SLACK_URL,
    }


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    for name, value in _secret_env().items():
        monkeypatch.setenv(name, value)
    e = Env(
        tmp_path,
        _example_config(tmp_path, f"http://127.0.0.1:{_closed_port()}"),
        capsys,
        monkeypatch,
    )
    e.write()
    e.watch_path.write_text(
        "- 6f1c0d2e9a8b4c7d\n- id: 0a1b2c3d4e5f6a7b\n  labels: {customer: acme}\n"
        "  endpoints: [ops]\n"
    )
    return e


def _subprocess_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING")}
    base.update(_secret_env(), PYTHONUNBUFFERED="1", **extra)
    return base


def _console_script() -> Path:
    script = Path(sys.executable).with_name("chanjing-notifier")
    if not script.exists():
        pytest.skip("the chanjing-notifier console script is not installed in this venv")
    return script


def _run(argv: list[str], env: dict[str, str]) -> Result:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    _assert_clean(result)
    return result


# ------------------------------------------------------------------------------ check: good


def test_check_example_config_passes_offline(env: Env) -> None:
    result = env.ok("check")
    assert str(env.config_path) in result.out
    assert "OK" in result.out
    assert "ops (webhook)" in result.out and "team (slack)" in result.out
    assert "2 job(s)" in result.out
    assert result.err == ""  # https endpoints, loopback vendor: nothing to warn about
    assert not env.state_path.exists()  # check reads the config, it does not open the state


def test_check_makes_no_connection(env: Env) -> None:
    """Vendor and endpoints all point at a listening socket: check must not connect to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = copy.deepcopy(env.config)
        config["chanjing"]["base_url"] = url
        config["endpoints"][0]["url"] = f"{url}/ops"
        env.monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{url}/services/slackDISTINCTsecret93b1")
        env.write(config)
        env.ok("check")
        # The kernel completes handshakes into the backlog: any connect attempt would be here.
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_check_passes_without_watch_file_section(env: Env) -> None:
    config = copy.deepcopy(env.config)
    del config["watch"]
    env.write(config)
    assert "no watch file configured" in env.ok("check").out


# ------------------------------------------------------------------------------ check: broken

Mutation = Callable[[dict[str, Any], pytest.MonkeyPatch], None]


def _set(path: str, value: Any) -> Mutation:
    """Set ``a.b.0.c`` in the config dict (creating nothing: the parents must exist)."""

    def mutate(config: dict[str, Any], _mp: pytest.MonkeyPatch) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _delete(section: str, key: str) -> Mutation:
    def mutate(config: dict[str, Any], _mp: pytest.MonkeyPatch) -> None:
        del config[section][key]

    return mutate


def _env(name: str, value: str | None) -> Mutation:
    def mutate(_config: dict[str, Any], mp: pytest.MonkeyPatch) -> None:
        if value is None:
            mp.delenv(name, raising=False)
        else:
            mp.setenv(name, value)

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(config: dict[str, Any], mp: pytest.MonkeyPatch) -> None:
        for m in mutations:
            m(config, mp)

    return mutate


BROKEN_CONFIGS: dict[str, tuple[Mutation, list[str]]] = {
    "missing-app-id": (_delete("chanjing", "app_id"), ["chanjing.app_id", "missing"]),
    "qps-zero": (_set("chanjing.qps", 0), ["chanjing.qps", "1 to 1000"]),
    "qps-text": (_set("chanjing.qps", "ten"), ["chanjing.qps", "integer"]),
    "unknown-key": (
        _set("polling.min_intervall", "5s"),
        ["polling.min_intervall", "unknown key", "min_interval"],
    ),
    "bad-duration": (_set("polling.give_up_after", "soon"), ["polling.give_up_after", "'soon'"]),
    "min-over-max": (
        _both(_set("polling.min_interval", "10m"), _set("polling.max_interval", "1m")),
        ["polling.min_interval", "polling.max_interval"],
    ),
    "unknown-endpoint-type": (
        _set("endpoints.1.type", "email"),
        ["endpoints[1].type", "'email'", "webhook, slack"],
    ),
    "unknown-event": (
        _set("endpoints.0.events", ["lip_sync.succeeded", "lip_sync.done"]),
        ["endpoints[0].events[1]", "lip_sync.done"],
    ),
    "secret-not-whsec": (
        _env("OPS_WEBHOOK_SECRET", "sk-cli-DISTINCT-vendor-secret-4f7a9c21"),
        ["endpoints[0].secret", "whsec_"],
    ),
    "secret-bad-base64": (
        _env("OPS_WEBHOOK_SECRET", "whsec_slackDISTINCTsecret93b1!!"),
        ["endpoints[0].secret", "base64"],
    ),
    "duplicate-endpoint-name": (
        _set("endpoints.1.name", "ops"),
        ["endpoints[1].name", "duplicate", "'ops'"],
    ),
    "url-ftp": (_set("endpoints.0.url", "ftp://hooks.example.com/x"), ["endpoints[0].url", "http"]),
    "url-not-a-url": (_set("endpoints.0.url", "not a url"), ["endpoints[0].url", "http"]),
    "slack-url-not-http": (
        _env("SLACK_WEBHOOK_URL", SLACK_URL.replace("https://", "ftp://")),
        ["endpoints[1].url", "http"],
    ),
    "vendor-secret-whitespace": (
        _env("CHANJING_SECRET_KEY", VENDOR_SECRET + " "),
        ["chanjing.secret_key", "whitespace"],
    ),
    "unset-env-var": (
        _env("CHANJING_SECRET_KEY", None),
        ["chanjing.secret_key", "CHANJING_SECRET_KEY", "not set"],
    ),
    "bad-base-url": (_set("chanjing.base_url", "open-api.chanjing.cc"), ["chanjing.base_url"]),
    "bad-log-level": (_set("log.level", "loud"), ["log.level", "'loud'"]),
}


@pytest.mark.parametrize("case", list(BROKEN_CONFIGS))
def test_check_broken_config(env: Env, case: str) -> None:
    mutate, expected = BROKEN_CONFIGS[case]
    config = copy.deepcopy(env.config)
    mutate(config, env.monkeypatch)
    env.write(config)
    result = env.run("check")
    assert result.code == 2, result.all
    assert str(env.config_path) in result.err
    for fragment in expected:
        assert fragment in result.err, f"{fragment!r} not in:\n{result.err}"
    assert "OK" not in result.out
    assert result.err.startswith("error: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chanjing:\n  app_id: [unclosed\n", ["YAML syntax error", "line"]),
        ("chanjing:\n\tapp_id: tab\n", ["YAML syntax error"]),
        ("", ["empty"]),
        ("# only a comment\n", ["empty"]),
        ("- just\n- a list\n", ["top level must be a mapping"]),
        ("chanjing: {app_id: a}\nchanjing: {app_id: b}\n", ["duplicate key", "'chanjing'"]),
    ],
    ids=["yaml-syntax", "yaml-tab", "empty-file", "only-comment", "not-a-mapping", "dup-key"],
)
def test_check_unparsable_config(env: Env, text: str, expected: list[str]) -> None:
    env.config_path.write_text(text)
    result = env.run("check")
    assert result.code == 2, result.all
    assert str(env.config_path) in result.err
    for fragment in expected:
        assert fragment in result.err, result.err


def test_check_reports_every_problem_at_once(env: Env) -> None:
    config = copy.deepcopy(env.config)
    config["chanjing"]["qps"] = 0
    config["polling"]["give_up_after"] = "soon"
    config["endpoints"][0]["url"] = "not a url"
    env.write(config)
    result = env.run("check")
    assert result.code == 2
    for key in ("chanjing.qps", "polling.give_up_after", "endpoints[0].url"):
        assert key in result.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- good-id-1\n- id: 'bad id!'\n- id: job-3\n  endpoints: [nope]\n",
            ["[1].id", "invalid job id", "[2].endpoints[0]", "'nope'", "ops, team"],
        ),
        ("- 12345\n", ["[0]", "quote"]),
        ("- id: job-1\n  lables: {a: b}\n", ["[0].lables", "unknown key"]),
        ("- job-1\n- job-1\n", ["[1]", "duplicate job id"]),
        ("job-1: {}\n", ["top level must be a list"]),
        ("- [unclosed\n", ["YAML syntax error"]),
    ],
    ids=["bad-items", "number-id", "unknown-item-key", "duplicate-id", "not-a-list", "yaml"],
)
def test_check_malformed_watch_file(env: Env, text: str, expected: list[str]) -> None:
    env.watch_path.write_text(text)
    result = env.run("check")
    assert result.code == 2, result.all
    assert str(env.watch_path) in result.err
    for fragment in expected:
        assert fragment in result.err, f"{fragment!r} not in:\n{result.err}"


def test_check_missing_watch_file(env: Env) -> None:
    env.watch_path.unlink()
    result = env.run("check")
    assert result.code == 2
    assert str(env.watch_path) in result.err and "not found" in result.err


def test_check_empty_watch_file_is_fine(env: Env) -> None:
    env.watch_path.write_text("# nothing to watch yet\n")
    assert "0 job(s)" in env.ok("check").out


# ------------------------------------------------------------------------------ config location


def test_no_config_gives_a_hint(env: Env) -> None:
    env.capsys.readouterr()
    assert main(["check"]) == 2
    err = env.capsys.readouterr().err
    assert "-c/--config" in err and CONFIG_ENV in err
    assert "Traceback" not in err


def test_config_from_environment(env: Env) -> None:
    env.monkeypatch.setenv(CONFIG_ENV, str(env.config_path))
    env.capsys.readouterr()
    assert main(["check"]) == 0
    assert "OK" in env.capsys.readouterr().out
    assert main(["watch", "add", "from-env-1"]) == 0
    env.capsys.readouterr()
    assert main(["watch", "list", "--json"]) == 0
    assert [r["job_id"] for r in json.loads(env.capsys.readouterr().out)] == ["from-env-1"]


def test_option_wins_over_environment(env: Env) -> None:
    broken = env.tmp_path / "broken.yaml"
    broken.write_text("chanjing: {qps: 0}\n")
    env.monkeypatch.setenv(CONFIG_ENV, str(broken))
    assert env.run("check").code == 0
    env.capsys.readouterr()
    assert main(["check"]) == 2
    assert str(broken) in env.capsys.readouterr().err


def test_nonexistent_config_file(env: Env) -> None:
    missing = env.tmp_path / "nowhere" / "config.yaml"
    result = env.run("check", config=missing)
    assert result.code == 2
    assert str(missing) in result.err and "not found" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "list"],
        ["watch", "add", "job-1"],
        ["watch", "rm", "job-1"],
        ["events", "list"],
        ["deliveries", "list"],
        ["deliveries", "replay", "--dead"],
    ],
)
def test_every_config_command_rejects_a_bad_config(env: Env, args: list[str]) -> None:
    config = copy.deepcopy(env.config)
    config["chanjing"]["qps"] = "ten"
    env.write(config)
    result = env.run(*args)
    assert result.code == 2
    assert "chanjing.qps" in result.err
    assert not env.state_path.exists()


def test_bad_state_path_is_exit_1(env: Env) -> None:
    blocker = env.tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = copy.deepcopy(env.config)
    config["state"]["path"] = str(blocker / "state.db")
    env.write(config)
    result = env.run("watch", "list")
    assert result.code == 1
    assert "state" in result.err


# ------------------------------------------------------------------------------ watch


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bad id!"], ["invalid job id", "'bad id!'"]),
        (["good-1", "-starts-with-dash"], ["unrecognized arguments"]),
        (["good-1", "x" * 129], ["invalid job id"]),
        (["good-1", "--label", "novalue"], ["--label", "'novalue'", "KEY=VALUE"]),
        (["good-1", "--label", "bad key=v"], ["--label", "invalid label key"]),
        (["good-1", "--endpoint", "unknown"], ["--endpoint", "unknown", "ops, team"]),
        (["good-1", "--endpoint", "ops", "--endpoint", "nope"], ["nope", "ops, team"]),
    ],
    ids=["bad-id", "dash-id", "long-id", "label-novalue", "label-bad-key", "endpoint", "endpoints"],
)
def test_watch_add_rejects_bad_input(env: Env, args: list[str], expected: list[str]) -> None:
    result = env.run("watch", "add", *args)
    assert result.code == 2, result.all
    for fragment in expected:
        assert fragment in result.err, f"{fragment!r} not in:\n{result.err}"
    assert env.json("watch", "list") == []  # all or nothing: good-1 was not added either


def test_watch_add_list_rm(env: Env) -> None:
    out = env.ok("watch", "add", "job-a", "job-b", "--label", "k=v", "--endpoint", "ops").out
    assert "2 new" in out

    rows = env.json("watch", "list")
    assert sorted(r["job_id"] for r in rows) == ["job-a", "job-b"]
    for row in rows:
        assert row.keys() >= WATCH_COLUMNS
        assert row["state"] == "active"
        assert row["labels"] == {"k": "v"}
        assert row["last_poll_at"] is None
        assert isinstance(row["next_poll_at"], int | float)
        assert row["endpoints"] == ["ops"]

    assert len(env.json("watch", "list", "--state", "active")) == 2
    for state in ("succeeded", "failed", "expired"):
        assert env.json("watch", "list", "--state", state) == []

    table = env.ok("watch", "list").out.splitlines()
    assert table[0].split()[:4] == ["JOB_ID", "STATE", "STATUS", "PROGRESS"]
    assert any(line.startswith("job-a") and "k=v" in line for line in table[1:])

    # Adding again is not an error; it updates labels but adds nothing.
    out = env.ok("watch", "add", "job-a", "job-c", "--label", "k=w").out
    assert "1 new" in out and "1 already known" in out
    by_id = {r["job_id"]: r for r in env.json("watch", "list")}
    assert by_id["job-a"]["labels"] == {"k": "w"}
    assert by_id["job-c"]["endpoints"] is None

    assert "removed 1" in env.ok("watch", "rm", "job-a").out
    assert sorted(r["job_id"] for r in env.json("watch", "list")) == ["job-b", "job-c"]
    env.ok("watch", "rm", "job-b", "job-c")
    assert env.json("watch", "list") == []


def test_watch_rm_unknown_id(env: Env) -> None:
    env.ok("watch", "add", "job-a")
    result = env.run("watch", "rm", "job-a", "no-such-job")
    assert result.code == 1
    assert "no-such-job" in result.err
    assert env.json("watch", "list") == []  # the known one was still removed


def test_watch_list_bad_state_is_usage_error(env: Env) -> None:
    result = env.run("watch", "list", "--state", "bogus")
    assert result.code == 2
    assert "invalid choice" in result.err and "active" in result.err


def test_watch_list_shows_a_rejected_id_apart_from_a_failed_job(env: Env) -> None:
    # Issue 18, item 7b: an id the vendor does not know is `rejected`, its note says why;
    # one failed by rejection in an older version stays `failed` (and is still listed).
    env.ok("watch", "add", "typo-1", "old-1", "job-ok")
    note = "unknown to the vendor: record not found (3x in 121s)"
    with Store(env.state_path) as store:
        last = JobDetail("typo-1", 0, 0, "record not found", "", "", 0, 0)
        event = build_event(last, {}, store.now(), rejections=3)
        assert store.reject_watch("typo-1", note, event, ["ops"])
        fail_as_before(store, "old-1", "vendor rejected the id 3x since …: record not found")

    (row,) = env.json("watch", "list", "--state", "rejected")
    assert (row["job_id"], row["state"], row["last_error"]) == ("typo-1", "rejected", note)
    assert [r["job_id"] for r in env.json("watch", "list", "--state", "failed")] == ["old-1"]
    table = env.ok("watch", "list").out.splitlines()
    (line,) = [line for line in table if line.startswith("typo-1")]
    assert line.split()[1] == "rejected" and line.endswith(note)
    (line,) = [line for line in table if line.startswith("old-1")]
    assert line.split()[1] == "failed"
    assert [e["type"] for e in env.json("events", "list")] == ["lip_sync.rejected"]

    out = env.ok("watch", "add", "typo-1").out
    assert "typo-1: not watched: rejected since" in out and "--reopen" in out
    assert "typo-1: rejected, watched again" in env.ok("watch", "add", "--reopen", "typo-1").out


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
    assert {"event_id", "job_id", "type", "created_at"} <= events[0].keys()
    assert events[0]["event_id"] == event_id
    assert events[0]["job_id"] == "job-done"
    assert events[0]["type"] == "lip_sync.succeeded"
    table = env.ok("events", "list").out.splitlines()
    assert table[0].split() == ["EVENT_ID", "JOB_ID", "TYPE", "CREATED_AT"]
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
