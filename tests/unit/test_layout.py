"""The package layout follows the data: imports point down the stages, never up."""

from __future__ import annotations

import ast
from pathlib import Path

import notifier

ROOT = Path(notifier.__file__).parent
BASE = {"models", "watchspec", "log", "net", "_tasks", "config", "__init__"}
#: What each part may import besides itself and the shared base.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "store": set(),
    "intake": {"store"},
    "delivery": {"store"},
    "polling": {"store", "delivery"},
    "gateway": {"store", "intake", "polling", "delivery"},
    "service": {"store", "intake", "polling", "delivery", "gateway"},
    "tools": {"store", "intake", "polling", "delivery", "gateway", "service"},
    "cli": {"store", "intake", "polling", "delivery", "gateway", "service", "tools"},
    "__main__": {"cli"},
}


def part_of(module: str) -> str:
    """``notifier.polling.vendor`` → ``polling``; shared base modules → ``base``."""
    head = module.split(".")[1] if "." in module else "__init__"
    return "base" if head in BASE else head


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "notifier" or n.startswith("notifier."))
    return found


def module_files() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def test_imports_point_down_the_stages() -> None:
    wrong = []
    for module, path in module_files():
        part = part_of(module)
        allowed = ALLOWED[part] | {part, "base"}
        for imported in imports_of(path):
            if part_of(imported) not in allowed:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from notifier.polling.vendor import VendorClient\n")
    assert part_of("notifier.store.sqlite") == "store"
    assert part_of(next(iter(imports_of(bad)))) not in ALLOWED["store"] | {"store", "base"}


def test_small_top_level_and_small_modules() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 8, top
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert too_long == {}
