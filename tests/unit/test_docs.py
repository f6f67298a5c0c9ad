"""The docs stay true to the code: links lead somewhere, the README's config is valid, and
every config key and every command is documented where the README's map says."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from notifier.cli import _build_parser
from notifier.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = [
        target
        for target in LINK.findall(text)
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert missing == []


def test_the_readme_config_is_valid(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (config,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "chanjing:" in b]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    env = {"CHANJING_APP_ID": "app", "CHANJING_SECRET_KEY": "key", "OPS_WEBHOOK_SECRET": secret}
    loaded = load_config(path, env)
    assert [ep.name for ep in loaded.endpoints] == ["ops"]
    assert len(config.strip().splitlines()) <= 12


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub: Any = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys += _keys(sub, f"{key}.")
        else:
            keys.append(key)
    return keys


def test_every_config_key_is_in_the_config_reference() -> None:
    reference = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert [key for key in _keys(Config) if f"`{key}" not in reference] == []


def test_every_command_and_option_is_in_the_cli_page() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if name not in page:
                        missing.append(" ".join([*words, name]))
                    walk(child, [*words, name])
            elif action.help != argparse.SUPPRESS:
                longest = max(action.option_strings, key=len, default=None)
                if longest and longest not in ("--help",) and longest not in page:
                    missing.append(" ".join([*words, longest]))

    walk(_build_parser(), [])
    assert missing == []


def test_every_module_the_architecture_page_names_exists() -> None:
    """Each row names files of its folder; the walk names paths below notifier/."""
    missing = []
    for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        row = re.match(r"\| `(notifier/[a-z_]+/)` \|", line)
        folder = ROOT / row.group(1) if row else ROOT / "notifier"
        for name in re.findall(r"`([a-z_/{},]+\.py)`", line):
            if not (folder / name).exists() and not (ROOT / "notifier" / name).exists():
                missing.append(name)
    assert missing == []
