"""The parser explains itself: every positional says what it takes, and `run`, `check` and
`demo --help` say what they do, which signals they heed and what their exit codes mean."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest

from notifier.cli import _build_parser
from notifier.config.fields import WHSEC_RECIPE, webhook_secret


def _parsers(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(words, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, (*words, name))
    return found


def test_every_positional_argument_has_help() -> None:
    bare = [
        " ".join([*words, action.metavar or action.dest])
        for words, parser in _parsers(_build_parser())
        for action in parser._actions
        if not action.option_strings
        and not isinstance(action, argparse._SubParsersAction)
        and not (action.help or "").strip()
    ]
    assert bare == []


def _help(command: str) -> str:
    (parser,) = [p for words, p in _parsers(_build_parser()) if words == (command,)]
    return " ".join(parser.format_help().split())


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        (
            "run",
            [
                "SIGHUP re-reads",
                "SIGTERM or SIGINT",
                "Exit codes: 0",
                "2 bad config",
                "Creates the state",
            ],
        ),
        (
            "check",
            [
                "Validate the config",
                "watch file",
                "--online makes one token call",
                "two listeners on one port",
                "Exit codes: 0 valid",
                "credentials refused",
            ],
        ),
        ("demo", ["offline", "Exit codes: 0 every expected callback arrived", "130"]),
    ],
)
def test_run_check_and_demo_help_say_what_they_do(command: str, phrases: list[str]) -> None:
    text = _help(command)
    assert [p for p in phrases if p not in text] == []


def test_a_bad_webhook_secret_says_how_to_make_a_good_one() -> None:
    with pytest.raises(ValueError) as info:
        webhook_secret("TOPSECRET-plain")
    assert str(info.value).endswith(WHSEC_RECIPE)
    # The recipe works: what it prints is a secret the daemon and standardwebhooks take.
    command = shlex.split(WHSEC_RECIPE.removeprefix("make one: "))
    assert command[0] == "python3"
    made = subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert webhook_secret(made) == made
