"""``intake:``: off when absent, ``${VAR}`` tokens that join the redactor, checked addresses
and tokens whose problems never echo them."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import ConfigError, load_config
from tests.kit.config_files import BASE, ENV, write

TOKEN = "intake-7c1d2e3f4a5b6c7d8e9f"
OLD_TOKEN = "intake-old-0a1b2c3d4e5f6a7b"


def _load(tmp_path: Path, text: str) -> object:
    return load_config(write(tmp_path, BASE + text), {**ENV, "INTAKE_TOKEN": TOKEN})


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert TOKEN not in message
    return message


def test_off_when_absent(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), ENV)
    assert config.intake.listen is None
    assert config.intake.address() is None
    assert config.intake.tokens == []


def test_tokens_from_the_environment_join_the_secrets(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        f"intake:\n  listen: 0.0.0.0:8088\n  tokens: [${{INTAKE_TOKEN}}, {OLD_TOKEN}]\n"
        "  client_timeout: 5s\n",
    )
    intake = config.intake  # type: ignore[attr-defined]
    assert intake.address() == ("0.0.0.0", 8088)
    assert intake.token_values() == [TOKEN, OLD_TOKEN]
    assert intake.client_timeout == 5.0
    assert {TOKEN, OLD_TOKEN} <= set(config.secrets())  # type: ignore[attr-defined]
    assert TOKEN not in repr(config)
    one = _load(tmp_path, "intake:\n  listen: '[::1]:8088'\n  tokens: ${INTAKE_TOKEN}\n")
    assert one.intake.token_values() == [TOKEN]  # type: ignore[attr-defined]
    assert one.intake.address() == ("::1", 8088)  # type: ignore[attr-defined]


def test_listen_without_tokens_is_allowed_with_a_warning(tmp_path: Path) -> None:
    config = _load(tmp_path, "intake:\n  listen: 127.0.0.1:8088\n")
    assert any("intake.listen without intake.tokens" in w for w in config.warnings())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("intake:\n  listen: 8088\n", "intake.listen: must be host:port"),
        ("intake:\n  listen: localhost:0\n", "intake.listen: must be host:port"),
        ("intake:\n  tokens: [short]\n", "intake.tokens[0]: must be 16-256 characters"),
        ("intake:\n  tokens: ['has space in the token']\n", "intake.tokens[0]: must be 16-256"),
        ("intake:\n  tokens: {a: b}\n", "intake.tokens: must be a list of tokens"),
        ("intake:\n  client_timeout: 0s\n", "intake.client_timeout:"),
        ("intake:\n  colour: red\n", "intake.colour: unknown key"),
    ],
)
def test_problems_are_named(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_a_bad_token_is_never_echoed(tmp_path: Path) -> None:
    message = _error(tmp_path, "intake:\n  tokens: ['intake-7c1d2e3f4a5b6c7d8e9f!']\n")
    assert "intake-7c1d2e3f4a5b6c7d8e9f" not in message
