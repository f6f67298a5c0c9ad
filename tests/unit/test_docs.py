"""The docs stay true to the code: links lead somewhere (anchors included), cross-references
are links, every YAML example passes the real ``check`` (or the watch-file parser), and every
config key and every command is documented where the README's map says."""

from __future__ import annotations

import argparse
import base64
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from notifier.cli import _build_parser, main
from notifier.config import Config, load_config, read_yaml_file
from notifier.intake.watchfile import load_watch_file

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
            if not any(p.exists() for p in (folder / name, ROOT / "notifier" / name, ROOT / name)):
                missing.append(name)
    assert missing == []


def test_every_path_a_recipe_names_exists() -> None:
    """The recipes ("add a job kind", ...) name files and folders from the checkout's root, in
    the order a newcomer touches them: each must be there."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    recipes = page.split("\n## Recipes\n", 1)[1]
    named = re.findall(r"`((?:notifier|tests|docs)/[\w./{},-]*)`", recipes)
    assert len(named) >= 20
    assert [p for p in named if not (ROOT / p).exists()] == []
    assert "### Add a job kind" in recipes


# -- every YAML example passes `check` ---------------------------------------------------------

FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.S | re.M)
#: Values for the ${VAR}s the examples use, each of the form its key wants. A new name fails
#: the test below until it is given one here.
EXAMPLE_ENV = {
    "CHANJING_APP_ID": "app",
    "CHANJING_SECRET_KEY": "key",
    "OPS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"o" * 32).decode(),
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
    "NOTIFIER_DB_PASSWORD": "pw",
    "INTAKE_TOKEN": "intake-token-0123456789abcdef",
    "CALLBACK_TOKEN": "callback-token-0123456789abcdef",
    "SHOP_INTAKE_TOKEN": "intake-shop-0123456789abcdef",
    "MEDIA_INTAKE_TOKEN": "intake-media-0123456789abcdef",
    "SHOP_GATEWAY_SECRET": "shop-secret",
    "SHOP_SECRET_KEY": "shop-key",
    "MEDIA_SECRET_KEY": "media-key",
    "HOSTNAME": "web-1",
}
#: A YAML block that is neither a config nor a watch file names its file in a first-line
#: comment (``# prometheus.yml``): another program's.
OTHER_FILE = re.compile(r"# [\w./-]+\.ya?ml\n")


def _yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in [*PAGES, *sorted((ROOT / "examples").glob("*.yaml"))]:
        text = page.read_text(encoding="utf-8")
        if page.suffix == ".yaml":
            blocks.append((page.name, text))
            continue
        for match in FENCE.finditer(text):
            if match.group(1) in ("yaml", "yml"):
                line = text[: match.start()].count("\n") + 1
                blocks.append((f"{page.name}:{line}", match.group(2)))
    return blocks


def _read(block: str, path: Path) -> Any:
    """The block as the daemon's reader parses it (``[${TOKEN}]`` included)."""
    path.write_text(block, encoding="utf-8")
    return read_yaml_file(path)


@pytest.mark.parametrize(("where", "block"), _yaml_blocks(), ids=[w for w, _ in _yaml_blocks()])
def test_every_yaml_example_passes_check(
    where: str,
    block: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A config (every top-level key a config section) is checked by the real ``check``,
    a fragment on top of the README's config (its sections replace the README's); a list
    is a watch file, read by the watch-file parser against the README's endpoints."""
    data = _read(block, tmp_path / "example.yaml")
    if isinstance(data, list):
        assert load_watch_file(tmp_path / "example.yaml", ["ops"])
        return
    assert isinstance(data, dict), where
    if not set(data) <= set(Config.model_fields):
        assert OTHER_FILE.match(block), f"{where}: neither a config nor a watch file: {set(data)}"
        return
    unknown = sorted(set(re.findall(r"\$\{(\w+)\}", block)) - set(EXAMPLE_ENV))
    assert unknown == [], f"{where}: give EXAMPLE_ENV a value for these"
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yaml"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (base,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "chanjing:" in b]
    merged = {**_read(base, tmp_path / "base.yaml"), **data}
    if "accounts" in data:
        merged.pop("chanjing", None)  # accounts instead of the one-account section
    path.write_text(yaml.safe_dump(merged))
    if isinstance(data.get("watch"), dict) and "file" in data["watch"]:
        (tmp_path / data["watch"]["file"]).write_text("[]\n")
    code = main(["check", "-c", str(path)])
    assert code == 0, capsys.readouterr().err


def test_the_local_walkthrough_shows_the_shipped_example_config() -> None:
    page = (ROOT / "docs" / "try-it-locally.md").read_text(encoding="utf-8")
    shipped = (ROOT / "examples" / "local.yaml").read_text(encoding="utf-8")
    body = "".join(line for line in shipped.splitlines(True) if not line.startswith("#"))
    assert f"```yaml\n{body}```" in page


# -- cross-references are links, and their anchors exist ----------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    kept = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _headings(page: Path) -> list[str]:
    return re.findall(r"^#+ (.+)$", _prose(page.read_text(encoding="utf-8")), re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_anchor_names_a_heading(page: Path) -> None:
    text = _prose(page.read_text(encoding="utf-8"))
    missing = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", text):
        linked = page if not target else page.parent / target
        if linked.suffix == ".md" and anchor not in map(_slug, _headings(linked)):
            missing.append(f"{target}#{anchor}")
    assert missing == []


def test_cross_references_between_pages_are_links() -> None:
    """No "see *Polling*" or "see \"Run it as a service\"": a heading named in prose is a link."""
    headings = {h.strip() for page in PAGES for h in _headings(page)}
    named = []
    for page in PAGES:
        text = re.sub(r"`[^`]*`", "", _prose(page.read_text(encoding="utf-8")))
        for quoted in re.findall(r'"([^"\n]+)"|(?<!\*)\*([^*\n]+)\*(?!\*)', text):
            name = next(q for q in quoted if q)
            if any(h == name or h.startswith((f"{name} ", f"{name}:")) for h in headings):
                named.append(f"{page.name}: {name}")
    assert named == []


def test_the_readme_map_links_every_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [name for name in pages if f"](docs/{name})" not in readme] == []
