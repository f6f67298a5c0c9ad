"""``intake.callback_token``, ``intake.labels`` and ``intake.endpoints``: a secret checked like
the tokens (never echoed, joins the redactor), defaults checked like ``watch add``'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import Config, ConfigError, load_config
from tests.kit.config_files import BASE, ENDPOINTS, ENV, write

CALLBACK = "cb-0a1b2c3d4e5f6a7b8c9d"


def _load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, BASE + ENDPOINTS + text), {**ENV, "CB": CALLBACK})


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_off_by_default(tmp_path: Path) -> None:
    intake = _load(tmp_path, "").intake
    assert (intake.callback_secret(), intake.labels, intake.endpoints) == (None, {}, None)


def test_the_token_and_defaults(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "intake:\n  listen: 127.0.0.1:8088\n  callback_token: ${CB}\n"
        "  labels: {via: callback, n: 3}\n  endpoints: [team]\n",
    )
    intake = config.intake
    assert intake.callback_secret() == CALLBACK
    assert intake.labels == {"via": "callback", "n": "3"}
    assert intake.endpoints == ["team"]
    assert CALLBACK in config.secrets()
    assert CALLBACK not in repr(config)
    # No bearer tokens: only the callback is served, and the warning says so.
    assert any("but the vendor callback" in w for w in config.warnings())


def test_a_token_without_a_listener_is_warned_about(tmp_path: Path) -> None:
    config = _load(tmp_path, "intake:\n  callback_token: ${CB}\n")
    assert any("callback_token without intake.listen" in w for w in config.warnings())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("intake:\n  callback_token: short\n", "intake.callback_token: must be 16-256"),
        ("intake:\n  endpoints: [ops, nope]\n", "intake.endpoints[1]: unknown endpoint 'nope'"),
        ("intake:\n  endpoints: ops\n", "intake.endpoints:"),
        ("intake:\n  labels: {'bad key': x}\n", "intake.labels: invalid label key"),
        ("intake:\n  labels: [a]\n", "intake.labels: labels must be a mapping"),
    ],
)
def test_problems_are_named(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_a_bad_callback_token_is_never_echoed(tmp_path: Path) -> None:
    message = _error(tmp_path, f"intake:\n  callback_token: '{CALLBACK}!'\n")
    assert CALLBACK not in message
