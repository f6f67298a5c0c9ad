"""What a CLI command on a SQLite state loads: not the PostgreSQL driver, the log stack or
the daemon's HTTP stack. Each costs 0.1-0.3 s of CPU a command; they are for `run` and for a
PostgreSQL state only (a new interpreter: what the test process imported does not count)."""

from __future__ import annotations

import json
import subprocess
import sys

from notifier.store import DB_ERRORS
from tests.kit import Workspace

HEAVY = ["psycopg", "structlog", "rich", "aiohttp", "prometheus_client", "apscheduler", "httpx"]

SCRIPT = """
import json, sys
from notifier.cli import main
codes = [main(["-c", sys.argv[1], *args.split()]) for args in sys.argv[2:]]
print(json.dumps({"codes": codes, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_cli_commands_on_sqlite_load_no_driver_log_or_server_stack(workspace: Workspace) -> None:
    commands = ["watch add job-a", "watch list --json", "deliveries list", "events list", "check"]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(workspace.config_path), *commands],
        env=workspace.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["codes"] == [0] * len(commands), result.stderr
    assert sorted(set(out["loaded"]) & set(HEAVY)) == []


def test_db_errors_still_catch_the_postgresql_driver_errors() -> None:
    import psycopg

    try:
        raise psycopg.OperationalError("connection refused")
    except DB_ERRORS as exc:
        assert isinstance(exc, psycopg.Error)
