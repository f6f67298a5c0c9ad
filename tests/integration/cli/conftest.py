"""Fixtures of the CLI tests: an example config with distinctive secrets, run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.cli import CONFIG_ENV
from tests.kit.cli_env import Env, _closed_port, _example_config, _secret_env


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    for name, value in _secret_env().items():
        monkeypatch.setenv(name, value)
    e = Env(
        tmp_path,
        _example_config(tmp_path, f"http://127.0.0.1:{_closed_port()}"),
        capsys,
        monkeypatch,
    )
    e.write()
    e.watch_path.write_text(
        "- 6f1c0d2e9a8b4c7d\n- id: 0a1b2c3d4e5f6a7b\n  labels: {customer: acme}\n"
        "  endpoints: [ops]\n"
    )
    return e
