"""`chanjing-notifier demo` with its output piped (not a terminal): whole lines, the
endpoints named as the summary names them, and its two vendor accounts' jobs each notified
under their account's own budget."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_piped_demo_keeps_lines_whole_and_names_endpoints_alike() -> None:
    env = dict(os.environ, COLUMNS="80")
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "demo"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("vendor simulator http://127.0.0.1:")
    assert " · receiver http://127.0.0.1:" in first and first.endswith("state.db")
    assert " · gateway http://127.0.0.1:" in first
    assert " · 17 jobs on 2 accounts (default, studio) · " in first
    callbacks = [line for line in result.stdout.splitlines() if line.startswith("callback ")]
    assert {line.split()[1] for line in callbacks} == {"ops", "analytics", "team"}
    # Each callback names its job's account; both accounts' jobs reached every endpoint.
    named = {(line.split()[2], line.split()[4]) for line in callbacks}
    assert all(line.split()[3] == "account" for line in callbacks), callbacks
    assert {a for job, a in named if job.startswith("studio-")} == {"studio"}
    assert {a for job, a in named if not job.startswith("studio-")} == {"default"}
    studio = {(line.split()[1], line.split()[2]) for line in callbacks if "account studio" in line}
    assert {("ops", "studio-teaser"), ("ops", "studio-dub"), ("team", "studio-dub")} <= studio
    assert ("analytics", "studio-reel") in studio
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith("team (slack)") for line in lines)
    # One job reached the daemon through each of the API, the vendor callback and discovery.
    assert "HTTP API               api-upload: POST /v1/watches → 202" in lines
    (callback,) = [line for line in lines if line.startswith("vendor callback")]
    assert "cb-render: answered http 202, webhook" in callback
    assert "discovery              found-later: found by a list sweep" in lines
    # One was created through the gateway, as the user's own application would: watched
    # before the create's answer came back, its webhook soon after it finished (the gateway
    # gave the vendor the daemon's callback), and its look after the webhook cost no vendor call.
    assert "job app-render    queued (via gateway, account default)" in lines
    assert "job studio-teaser queued (via watch file, account studio)" in lines
    assert "job studio-reel   queued (via queue, account studio)" in lines
    assert "job studio-dub    queued (via HTTP API, account studio)" in lines
    assert (
        'HTTP API               studio-dub: POST /v1/watches with "account": "studio" → 202'
        in lines
    )
    (gateway,) = [line for line in lines if line.startswith("gateway  ")]
    assert gateway.startswith(
        "gateway                app-render: created through the gateway, watched at once, webhook "
    ), gateway
    assert gateway.endswith(" s after it finished")
    assert float(gateway.split("webhook ")[1].split(" s ")[0]) < 5.0, gateway
    (details,) = [line for line in lines if line.startswith("gateway detail calls")]
    assert details.startswith("gateway detail calls   app-render: "), details
    assert "absorbed (no vendor call)" in details, details
    assert "ops (webhook)          17/17 received" in lines
    # Each account's jobs notified, each within its own budget as the simulator counted it.
    accounts = {line.split()[1]: line for line in lines if line.startswith("account ")}
    assert sorted(accounts) == ["default", "studio"], lines
    assert accounts["default"].startswith("account default        14/14 jobs notified (")
    assert accounts["studio"].startswith("account studio         3/3 jobs notified (")
    for line in accounts.values():
        # Every webhook about the account's jobs names it in its payload (data.account).
        named, webhooks = line.split(" (")[1].split(" webhooks")[0].split("/")
        assert named == webhooks and int(webhooks) >= 3, line
        most = int(line.split("(max ")[1].split("/s")[0])
        assert 0 < most <= 10 and line.endswith(" of 10, 40001: 0)"), line
