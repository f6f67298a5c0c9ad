"""schemathesis (the `test` extras pin it) against the live intake API: a real daemon, vendor
callback included, on 127.0.0.1, reading the document the API serves. Every check, a bounded
number of examples and a fixed seed, with and without a bearer token: any answer the document
does not describe (a 500, an undocumented status or body, a valid request refused, an invalid
one taken) fails the test, so the document and the server cannot drift apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import Workspace, free_port

TOKEN = "tok-a-4f1d9c2b7e6a5d3c"
CALLBACK_TOKEN = "cb-7d1e0c9b8a6f5e4d3c2b1a09"
#: Per operation and phase: the whole run takes a few seconds a variant on 2 busy cores.
MAX_EXAMPLES = 25
SEED = 1


@pytest.fixture
def live_url(workspace: Workspace) -> Iterator[str]:
    """The daemon itself (`run`), its intake listener on a free port, polling the simulator."""
    port = free_port()
    workspace.env.update(INTAKE_TOKEN=TOKEN, CALLBACK_TOKEN=CALLBACK_TOKEN)
    workspace.config["intake"] = {
        "listen": f"127.0.0.1:{port}",
        "tokens": ["${INTAKE_TOKEN}"],
        "callback_token": "${CALLBACK_TOKEN}",
        "labels": {"via": "callback"},
        "client_timeout": "5s",
    }
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    yield f"http://127.0.0.1:{port}"
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output, daemon.output


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_schemathesis_finds_nothing(live_url: str, tmp_path: Path, with_token: bool) -> None:
    # The callback's secret is in its path: given, so that operation is exercised too.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[[operations]]\n"
        'include-operation-id = "vendorCallback"\n'
        f'parameters = {{ callback_token = "{CALLBACK_TOKEN}" }}\n'
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{live_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
    ]
    if with_token:
        command += ["--header", f"Authorization: Bearer {TOKEN}"]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Operations:       5 selected / 5 total" in output, output
    assert "FAILURES" not in output and "ERRORS" not in output, output
    if with_token:  # every phase ran its cases, the links from POST /v1/watches were followed
        assert "No issues found" in output, output
        assert "API Links:    2 covered" in output, output
