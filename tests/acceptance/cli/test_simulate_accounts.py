"""`chanjing-notifier simulate` serving several vendor accounts (`--account`), as the process
a user starts: each account takes its own credentials, gets its own token and budget, and a
`--jobs-file` item lands on the account it names."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.kit.cli import run_cli

pytestmark = pytest.mark.slow

DETAIL = "/open/v1/video_lip_sync/detail"


def token(http: httpx.Client, app_id: str, secret_key: str) -> str:
    answer = http.post("/open/v1/access_token", json={"app_id": app_id, "secret_key": secret_key})
    assert answer.json()["code"] == 0, answer.text
    value: str = answer.json()["data"]["access_token"]
    return value


def code_of(http: httpx.Client, job_id: str, access_token: str) -> int:
    answer = http.get(DETAIL, params={"id": job_id}, headers={"access_token": access_token})
    code: int = answer.json()["code"]
    return code


def test_simulate_serves_every_account_given_on_the_command_line(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        yaml.safe_dump([{"id": "job-a"}, {"id": "job-b", "account": "shop-b", "outcome": 30}])
    )
    argv = ["--port", "0", "--qps", "5", "--jobs-file", str(jobs)]
    argv += ["--account", "shop-b:secret-b:3", "--account", "shop-c:se:cret-c"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifier", "simulate", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert [proc.stdout.readline(), proc.stdout.readline()] == ["job job-a\n", "job job-b\n"]
        line = proc.stdout.readline()
        match = re.fullmatch(
            r"simulator listening on (http://127\.0\.0\.1:\d+) \(app_id=demo-app, qps=5; "
            r"app_id=shop-b, qps=3; app_id=shop-c, qps=5\)\n",
            line,
        )
        assert match, line
        assert "secret" not in line
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            a = token(http, "demo-app", "demo-secret")
            b = token(http, "shop-b", "secret-b")
            c = token(http, "shop-c", "se:cret-c")  # a colon in the secret is kept
            assert (code_of(http, "job-a", a), code_of(http, "job-a", b)) == (0, 40000)
            assert (code_of(http, "job-b", b), code_of(http, "job-b", a)) == (0, 40000)
            assert code_of(http, "job-b", c) == 40000
            accounts = http.get("/_sim/stats").json()["accounts"]
            assert {app: acc["qps"] for app, acc in accounts.items()} == {
                "demo-app": 5,
                "shop-b": 3,
                "shop-c": 5,
            }
            assert {app: acc["tokens_issued"] for app, acc in accounts.items()} == {
                "demo-app": 1,
                "shop-b": 1,
                "shop-c": 1,
            }
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--account", "shop-b"], "--account: must be APP_ID:SECRET or APP_ID:SECRET:QPS"),
        (["--account", ":hidden-secret"], "--account: must be APP_ID:SECRET"),
        (["--account", "demo-app:hidden-secret"], "account 'demo-app' is given twice"),
    ],
)
def test_simulate_refuses_a_bad_account_without_echoing_its_secret(
    args: list[str], expected: str
) -> None:
    result = run_cli(["simulate", "--port", "0", *args], env=dict(os.environ))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "hidden-secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_jobs_file_item_naming_an_unknown_account_names_the_item(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(yaml.safe_dump([{"id": "fine"}, {"id": "lost", "account": "shop-z"}]))
    args = ["simulate", "--port", "0", "--account", "shop-b:s", "--jobs-file", str(jobs)]
    result = run_cli(args, env=dict(os.environ))
    assert result.returncode == 2
    assert "item 2: unknown account 'shop-z' (the simulator serves: demo-app, shop-b)" in (
        result.stderr
    )
