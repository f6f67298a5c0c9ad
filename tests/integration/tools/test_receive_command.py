"""`chanjing-notifier receive`: the standalone verifying receiver, as a child process, fed
real signed HTTP requests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from tests.kit import OPS_SECRET


def _start(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "notifier", "receive", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_receive_prints_each_verified_event_and_refuses_bad_signatures() -> None:
    proc = _start("--port", "0", "--secret", OPS_SECRET)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        banner = proc.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", banner)
        assert match, banner
        url = match.group(1)
        body = json.dumps({"type": "lip_sync.succeeded", "data": {"id": "job-r1", "status": 20}})
        now = datetime.now(UTC)
        headers = {
            "webhook-id": "evt_123",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(OPS_SECRET).sign("evt_123", now, body),
            "content-type": "application/json",
        }
        good = httpx.post(f"{url}/hooks/chanjing", content=body, headers=headers)
        assert good.status_code == 200
        line = proc.stdout.readline()
        assert "/hooks/chanjing" in line and "lip_sync.succeeded" in line
        assert "job job-r1" in line and "id evt_123" in line and "verified" in line
        assert json.loads(proc.stdout.readline()) == json.loads(body)

        forged = dict(headers, **{"webhook-signature": "v1,AAAA"})
        bad = httpx.post(f"{url}/x", content=body, headers=forged)
        assert bad.status_code == 400
        assert "SIGNATURE INVALID" in proc.stdout.readline()
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM: a clean exit 0, its pipes closed."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _finished(proc: subprocess.Popen[str]) -> str:
    """Its stderr once it has exited; killed (and the test failed) if it keeps running."""
    try:
        return proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def test_receive_usage_errors_are_plain() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = _start("--port", str(port))
        err = _finished(proc)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    proc = _start("--port", "0", "--secret", "not-a-secret")
    err = _finished(proc)
    assert proc.returncode == 2
    assert "--secret" in err and "Traceback" not in err


def test_slack_posts_pass_unsigned_on_their_path_and_webhooks_are_still_verified() -> None:
    """`--slack-path`: one receiver for a config with a webhook and a Slack endpoint."""
    proc = _start("--port", "0", "--secret", OPS_SECRET, "--slack-path", "/slack")
    try:
        assert proc.stderr is not None and proc.stdout is not None
        banner = proc.stderr.readline()
        assert "unsigned Slack posts on /slack" in banner, banner
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", banner)
        assert match, banner
        url = match.group(1)

        slack = {"text": "✅ lip-sync job job-s1 succeeded"}
        assert httpx.post(f"{url}/slack", json=slack).status_code == 200
        line = proc.stdout.readline()
        assert "/slack" in line and "slack message" in line and "not verified" in line
        assert json.loads(proc.stdout.readline()) == slack

        body = json.dumps({"type": "lip_sync.failed", "data": {"id": "job-s2", "status": 30}})
        unsigned = httpx.post(f"{url}/ops", content=body)
        assert unsigned.status_code == 400  # off the Slack path, a signature is required
        assert "SIGNATURE INVALID" in proc.stdout.readline()

        now = datetime.now(UTC)
        signed = {
            "webhook-id": "evt_s2",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(OPS_SECRET).sign("evt_s2", now, body),
        }
        assert httpx.post(f"{url}/ops", content=body, headers=signed).status_code == 200
        assert "verified" in proc.stdout.readline()
    finally:
        _stop(proc)


def test_a_slack_path_must_be_a_path() -> None:
    proc = _start("--slack-path", "slack")
    assert "'slack' is not a path" in _finished(proc)
    assert proc.returncode == 2
