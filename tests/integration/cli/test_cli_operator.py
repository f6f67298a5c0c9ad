"""Operating the CLI day to day (issue 9's rough edges), through the real entry point
(``notifier.cli.main``; a child ``python -m notifier`` where the process is the point) on a
real state file."""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.models import JobDetail, WatchSpec
from notifier.store import Store
from tests.kit import Workspace, run_cli, run_cli_process

REPO = Path(__file__).resolve().parents[3]


def cli(
    ws: Workspace, *args: str, env: dict[str, str] | None = None, config: bool = True, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The command in this process; with ``kw`` (for ``subprocess.run``: a pipe as stdout) a
    child ``python -m notifier``."""
    head = ["-c", str(ws.config_path)] if config else []
    argv, environ = [*head, *args], ws.env if env is None else env
    return run_cli_process(argv, environ, **kw) if kw else run_cli(argv, environ)


def seed(ws: Workspace, *job_ids: str, clock: float | None = None) -> None:
    """Watches added straight into a real state file (as the daemon's intake would)."""
    store = Store(ws.state_path) if clock is None else Store(ws.state_path, clock=lambda: clock)
    with store:
        store.add_watches([WatchSpec(j, {}, None) for j in job_ids], "queue")


def clean_env(ws: Workspace) -> dict[str, str]:
    """No secrets at all in the environment."""
    names = ("TEST_SECRET_KEY", "OPS_SECRET", "OLD_OPS_SECRET", "ANALYTICS_SECRET", "SLACK_URL")
    return {k: v for k, v in ws.env.items() if k not in names}


# ------------------------------------------------------------------------- 1. closed pipes


@pytest.mark.parametrize("args", [("watch", "list"), ("deliveries", "list", "--json")])
def test_a_reader_that_goes_away_gets_no_traceback(workspace: Workspace, args: tuple[str]) -> None:
    seed(workspace, *(f"job-{i}" for i in range(50)))
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has read enough: every write gets EPIPE
    try:
        result = cli(workspace, *args, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 0


# ------------------------------------------------------------------ 2. -c after the command


@pytest.mark.parametrize(
    "args",
    [
        ("watch", "list", "-c", "{cfg}"),
        ("watch", "-c", "{cfg}", "list"),
        ("events", "list", "--config", "{cfg}"),
        ("check", "-c", "{cfg}"),
    ],
)
def test_config_option_after_the_command(workspace: Workspace, args: tuple[str, ...]) -> None:
    seed(workspace, "job-a")
    argv = [a.format(cfg=workspace.config_path) for a in args]
    result = cli(workspace, *argv, config=False)
    assert result.returncode == 0, result.stderr
    if argv[:2] == ["watch", "list"] or argv[0] == "watch":
        assert "job-a" in result.stdout


# ------------------------------------------------------------------------------ 3. simulate


def test_simulate_on_a_taken_port_says_so(workspace: Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli(workspace, "simulate", "--port", str(port), config=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fault-html", "2"], "--fault-html: 2 is a share and must be between 0 and 1"),
        (["--fault-50000", "-0.1"], "--fault-50000"),
        (["--qps", "-1"], "--qps: -1 must be 0 or more"),
        (["--port", "70000"], "--port: 70000 is not a TCP port"),
    ],
)
def test_simulate_refuses_out_of_range_options(
    workspace: Workspace, args: list[str], expected: str
) -> None:
    result = cli(workspace, "simulate", *args, config=False)
    assert result.returncode == 2
    assert expected in result.stderr


def test_simulate_jobs_file_errors_name_the_item(workspace: Workspace) -> None:
    jobs = workspace.tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"id": "fine-1"}, {"id": "bad id!"}]))
    result = cli(workspace, "simulate", "--port", "0", "--jobs-file", str(jobs), config=False)
    assert result.returncode == 2
    assert "item 2" in result.stderr and "'bad id!'" in result.stderr
    jobs.write_text(yaml.safe_dump([{"id": "fine-1"}, {"outcome": 25}]))
    result = cli(workspace, "simulate", "--port", "0", "--jobs-file", str(jobs), config=False)
    assert result.returncode == 2
    assert "item 2: outcome" in result.stderr


def test_simulate_help_gives_the_defaults_to_point_a_config_at(workspace: Workspace) -> None:
    out = cli(workspace, "simulate", "--help", config=False).stdout
    for default in ("8700", "demo-app", "demo-secret"):
        assert f"(default: {default})" in out


# ----------------------------------------------------------------------------- 4. state.path


def _with_state(ws: Workspace, path: Path) -> None:
    ws.config["state"]["path"] = str(path)
    ws.write_config()


def test_a_mistyped_state_path_fails_check_and_run_and_creates_nothing(
    workspace: Workspace,
) -> None:
    missing_dir = workspace.tmp_path / "nonexistent" / "dir"
    _with_state(workspace, missing_dir / "state.db")
    result = cli(workspace, "check")
    assert result.returncode == 2
    assert "state.path" in result.stderr and str(missing_dir) in result.stderr
    result = cli(workspace, "run")
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert cli(workspace, "watch", "list").returncode == 1
    assert not missing_dir.parent.exists()


def test_read_only_commands_never_create_the_state(workspace: Workspace) -> None:
    for args in (
        ("watch", "list"),
        ("events", "list"),
        ("deliveries", "list"),
        ("watch", "rejected"),
    ):
        result = cli(workspace, *args)
        assert result.returncode == 0, result.stderr
        assert "no state file" in result.stderr
    assert not workspace.state_path.exists()
    check = cli(workspace, "check")
    assert f"state: {workspace.state_path} (does not exist yet" in check.stdout
    assert not workspace.state_path.exists()
    seed(workspace, "job-a")
    assert "(exists: 1 active watch(es))" in cli(workspace, "check").stdout


# ------------------------------------------------------------------- 5. the example config


def test_the_shipped_example_says_what_to_create_and_check_names_the_key(
    workspace: Workspace,
) -> None:
    example = REPO / "config.example.yaml"
    assert "echo '[]' > /etc/chanjing-notifier/watch.yaml" in example.read_text()
    env = dict(
        workspace.env,
        CHANJING_APP_ID="app",
        CHANJING_SECRET_KEY="sk",
        OPS_WEBHOOK_SECRET=workspace.env["OPS_SECRET"],
        SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T/B/x",
    )
    result = cli(workspace, "-c", str(example), "check", env=env, config=False)
    if Path("/etc/chanjing-notifier/watch.yaml").exists():
        assert result.returncode == 0, result.stderr
        assert "state: /var/lib/chanjing-notifier/state.db" in result.stdout
    else:
        assert result.returncode == 2
        assert (
            "config.example.yaml: watch.file: /etc/chanjing-notifier/watch.yaml: file not found "
            "(create it" in result.stderr
        )
    # With the watch file it names created (here: beside a copy), the example passes.
    copy = workspace.tmp_path / "example.yaml"
    (workspace.tmp_path / "w.yaml").write_text("[]\n")
    copy.write_text(
        example.read_text().replace("file: /etc/chanjing-notifier/watch.yaml", "file: w.yaml")
    )
    result = cli(workspace, "-c", str(copy), "check", env=env, config=False)
    assert result.returncode == 0, result.stderr
    assert "state: /var/lib/chanjing-notifier/state.db" in result.stdout


def test_a_missing_watch_file_is_blamed_on_watch_file(workspace: Workspace) -> None:
    workspace.watch_path.unlink()
    result = cli(workspace, "check")
    assert result.returncode == 2
    assert f"config.yaml: watch.file: {workspace.watch_path}: file not found" in result.stderr


# ----------------------------------------------------------------- 6. no secrets to list


def test_commands_on_the_state_need_no_secrets(workspace: Workspace) -> None:
    seed(workspace, "job-a")
    env = clean_env(workspace)
    for args in (("watch", "list"), ("deliveries", "list"), ("events", "list")):
        result = cli(workspace, *args, env=env)
        assert result.returncode == 0, result.stderr
    assert "job-a" in cli(workspace, "watch", "list", env=env).stdout
    added = cli(workspace, "watch", "add", "job-b", "--endpoint", "ops", env=env)
    assert added.returncode == 0, added.stderr
    # The commands that use them still insist.
    result = cli(workspace, "check", env=env)
    assert result.returncode == 2 and "TEST_SECRET_KEY" in result.stderr


# ------------------------------------------------------------------------ 7. watch add again


def _finish(ws: Workspace, job_id: str, at: float) -> None:
    from notifier.delivery.transition import build_event

    detail = JobDetail(job_id, 20, 100, "ok", "https://v/1.mp4", "", 10, 1)
    with Store(ws.state_path, clock=lambda: at) as store:
        event = build_event(detail, {}, at, None)
        store.record_terminal(detail, event, ["ops"])


def test_watch_add_of_a_finished_id_says_so_and_since_when(workspace: Workspace) -> None:
    seed(workspace, "job-done")
    _finish(workspace, "job-done", 1_700_000_000.0)
    result = cli(workspace, "watch", "add", "job-done")
    assert result.returncode == 0
    assert "watching 0 job(s): 0 new, 0 already known; 1 finished" in result.stdout
    assert "job-done: not watched: succeeded since 2023-11-14 22:13:20Z" in result.stdout


def test_watch_add_again_merges_labels_and_keeps_endpoints(workspace: Workspace) -> None:
    cli(workspace, "watch", "add", "job-a", "--label", "a=1", "--label", "b=2", "--endpoint", "ops")
    cli(workspace, "watch", "add", "job-a", "--label", "b=3")
    (row,) = json.loads(cli(workspace, "watch", "list", "--json").stdout)
    assert row["labels"] == {"a": "1", "b": "3"}
    assert row["endpoints"] == ["ops"]
    cli(workspace, "watch", "add", "job-a", "--endpoint", "analytics")
    (row,) = json.loads(cli(workspace, "watch", "list", "--json").stdout)
    assert row["endpoints"] == ["analytics"] and row["labels"] == {"a": "1", "b": "3"}


# ----------------------------------------------------------------- 8. rm of a file's watch


def test_watch_rm_of_a_file_id_says_it_comes_back(workspace: Workspace) -> None:
    with Store(workspace.state_path) as store:
        store.sync_file_watches([WatchSpec("from-file", {}, None)])
        store.add_watches([WatchSpec("from-queue", {}, None)], "queue")
    result = cli(workspace, "watch", "rm", "from-file", "from-queue")
    assert result.returncode == 0
    assert "removed 2 of 2" in result.stdout
    assert "from-file come(s) from" in result.stderr and "re-reads it" in result.stderr
    assert "from-queue" not in result.stderr


# ------------------------------------------------------------------ 9. what the table shows


def test_watch_list_shows_endpoints_errors_and_utc_times(workspace: Workspace) -> None:
    cli(workspace, "watch", "add", "job-a", "--endpoint", "ops")
    with Store(workspace.state_path) as store:
        store.record_poll_error("job-a", "vendor said 50000", store.now() + 5)
    lines = cli(workspace, "watch", "list").stdout.splitlines()
    header = lines[0].split()
    assert header[:10] == [
        "JOB_ID",
        "KIND",
        "STATE",
        "PHASE",
        "PROGRESS",
        "ENDPOINTS",
        "LABELS",
        "SEEN",
        "ERRORS",
        "LAST_POLL_AT",
    ]
    row = lines[1]
    assert "ops" in row and "vendor said 50000" in row
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", row)
    assert row.split()[8] == "1"  # ERRORS


def test_an_endpoint_restriction_that_misses_an_outcome_is_warned(workspace: Workspace) -> None:
    result = cli(workspace, "watch", "add", "job-a", "--endpoint", "team")
    assert result.returncode == 0
    assert "warning: team take(s) no lip_sync.succeeded" in result.stderr
    assert cli(workspace, "watch", "add", "job-b", "--endpoint", "ops").stderr == ""


# ------------------------------------------------------------------------ 10. long lists


def test_lists_are_newest_first_limited_and_filtered(workspace: Workspace) -> None:
    for i in range(5):
        seed(workspace, f"job-{i}", clock=1_700_000_000.0 + i * 3600)
    ids = [r["job_id"] for r in json.loads(cli(workspace, "watch", "list", "--json").stdout)]
    assert ids == ["job-4", "job-3", "job-2", "job-1", "job-0"]
    result = cli(workspace, "watch", "list", "--limit", "2")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["job-4", "job-3"]
    assert "showing the newest 2" in result.stderr
    since = cli(workspace, "watch", "list", "--json", "--since", "2023-11-15T00:13:20")
    assert [r["job_id"] for r in json.loads(since.stdout)] == ["job-4", "job-3", "job-2"]
    one = cli(workspace, "watch", "list", "--json", "--job", "job-1")
    assert [r["job_id"] for r in json.loads(one.stdout)] == ["job-1"]
    bad = cli(workspace, "watch", "list", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def _on_a_terminal(ws: Workspace, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the CLI with its stdout on a pseudo-terminal; returns (exit code, what it showed)."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "notifier", "-c", str(ws.config_path), *args],
            env=env,
            stdout=secondary,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(60)
        assert proc.stderr is not None
        proc.stderr.close()
    finally:
        os.close(primary)
    return code, b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_the_pager_and_a_pipe_does_not(workspace: Workspace) -> None:
    seed(workspace, "job-a")
    marker = workspace.tmp_path / "paged.txt"
    env = dict(workspace.env, PAGER=f"tee {marker}")
    code, shown = _on_a_terminal(workspace, env, "watch", "list")
    assert code == 0
    assert "job-a" in marker.read_text() and "job-a" in shown
    marker.unlink()
    assert "job-a" in cli(workspace, "watch", "list", env=env).stdout
    assert not marker.exists()
    code, _shown = _on_a_terminal(workspace, env, "watch", "list", "--no-pager")
    assert code == 0 and not marker.exists()
