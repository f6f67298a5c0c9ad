"""`receive --slack-path`: the real receiver process takes unsigned Slack posts on that path
and still verifies webhooks everywhere else (one receiver for a whole first-hour config)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"slack-path-test-secret-0123").decode()


def test_slack_posts_pass_unsigned_on_their_path_and_webhooks_are_still_verified() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notifier",
            "receive",
            "--port",
            "0",
            "--secret",
            SECRET,
            "--slack-path",
            "/slack",
        ],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
            "webhook-signature": Webhook(SECRET).sign("evt_s2", now, body),
        }
        assert httpx.post(f"{url}/ops", content=body, headers=signed).status_code == 200
        assert "verified" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_slack_path_must_be_a_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "receive", "--slack-path", "slack"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "'slack' is not a path" in result.stderr
