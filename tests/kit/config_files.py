"""Config files as text for the config tests: a base to extend, written and loaded."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from notifier.config import (
    Config,
    ConfigError,
    load_config,
)

SECRET_KEY = "sk-9f2c4e1a7b3d-TOPSECRET"


WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef-ops-secret!").decode()


WHSEC2 = "whsec_" + base64.b64encode(b"second-secret-0123456789abcdef").decode()


SLACK_URL = "https://hooks.slack.com/services/T000/B000/slackTOPSECRETpath"


ENV = {"SK": SECRET_KEY, "WH": WHSEC, "SLACK": SLACK_URL}


BASE = """\
chanjing:
  app_id: app-1
  secret_key: ${SK}
"""


ENDPOINTS = """\
endpoints:
  - name: ops
    type: webhook
    url: https://hooks.example.com/chanjing
    secret: ${WH}
  - name: team
    type: slack
    url: ${SLACK}
    events: [lip_sync.failed]
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), ENV if environ is None else environ)


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV if environ is None else environ)
    message = str(info.value)
    assert_clean(message, str(path))
    assert info.value.problems == message.splitlines()
    return message


def assert_clean(message: str, source: str) -> None:
    assert message
    for line in message.splitlines():
        assert line.startswith(f"{source}: "), line
    for bad in ("Traceback", "pydantic", "errors.pydantic.dev", "Input should", "Value error"):
        assert bad not in message
    for secret in (SECRET_KEY, WHSEC, WHSEC2, SLACK_URL, "TOPSECRET"):
        assert secret not in message
