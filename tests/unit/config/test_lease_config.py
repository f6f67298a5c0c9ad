"""``state.lease`` and ``state.node``: defaults and the problems an operator is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import Config
from tests.kit.config_files import BASE, config_error, load_text


def test_defaults() -> None:
    state = Config.model_validate({"chanjing": {"app_id": "a", "secret_key": "s"}}).state
    assert (state.lease, state.node) == (10.0, None)  # node: hostname:pid when the daemon starts


def test_lease_and_node_are_read(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + "state: {lease: 1m, node: web-1}\n")
    assert (config.state.lease, config.state.node) == (60.0, "web-1")
    assert load_text(tmp_path, BASE + "state: {lease: 3}\n").state.lease == 3.0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "2s",
            "state.lease: must be at least 3s (the 2s safety margin before it expires plus "
            "time to call the vendor), got '2s'",
        ),
        ("0", "state.lease: must be at least 3s"),
        ("soon", "state.lease: invalid duration 'soon'"),
    ],
)
def test_a_lease_too_short_to_use_is_refused(tmp_path: Path, value: str, problem: str) -> None:
    assert problem in config_error(tmp_path, BASE + f"state: {{lease: '{value}'}}\n")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("''", "state.node: must not be empty"),
        ("' web'", "state.node: must not start or end with whitespace"),
        ('"a\\tb"', "state.node: must be at most 200 printable characters"),
        ("x" * 201, "state.node: must be at most 200 printable characters"),
        ("[a]", "state.node: must be a string"),
    ],
)
def test_a_bad_node_name_is_refused(tmp_path: Path, value: str, problem: str) -> None:
    assert problem in config_error(tmp_path, BASE + f"state: {{node: {value}}}\n")
