"""`chanjing-notifier demo` with its output piped (not a terminal): whole lines, and the
endpoints named as the summary names them."""

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
    callbacks = [line for line in result.stdout.splitlines() if line.startswith("callback ")]
    assert {line.split()[1] for line in callbacks} == {"ops", "analytics", "team"}
    assert any(line.strip().startswith("team (slack)") for line in result.stdout.splitlines())
