"""The CLI tests' environment: the example config with distinctive secrets (none may show
in anything the CLI prints), in-process runs with their output, and the real entry points."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifier.cli import main
from tests.kit.cli import ConfigFiles

REPO = Path(__file__).resolve().parents[2]
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
class Env(ConfigFiles):
    """A config built from ``config.example.yaml``, the environment it needs, and a runner."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

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
