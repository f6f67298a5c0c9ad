"""The package layout follows the data: imports point down the stages, never up. The test
suite and the benchmarks keep to the same size rule, share helpers through the test kit
(``tests/kit``) and the bench's report and harness, and never import a test module or
another benchmark."""

from __future__ import annotations

import ast
from pathlib import Path

import notifier

ROOT = Path(notifier.__file__).parent
REPO = ROOT.parent
#: Every tree the size rule covers.
TREES = ("notifier", "tests", "bench")
MAX_LINES = 800
BASE = {"models", "kinds", "watchspec", "log", "net", "_tasks", "config", "__init__"}
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


def too_long(root: Path) -> dict[str, int]:
    """The Python files under ``root`` longer than the rule allows, with their length."""
    return {
        str(p.relative_to(root)): n
        for p in sorted(root.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }


def test_small_top_level_and_small_modules() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 8, top
    assert {tree: too_long(REPO / tree) for tree in TREES} == {tree: {} for tree in TREES}


def test_the_size_rule_catches_a_long_file(tmp_path: Path) -> None:
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert too_long(tmp_path) == {"long.py": MAX_LINES + 1}


# -- the test suite and the benchmarks --------------------------------------------------


def module_name(path: Path, root: Path = REPO) -> str:
    """``tests/unit/test_x.py`` → ``tests.unit.test_x``; a package's ``__init__`` → the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute imports; ``from a import b`` gives ``a`` and
    ``a.b``, since ``b`` may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def is_test_module(module: str) -> bool:
    """A module pytest collects tests or fixtures from: ``test_*`` or a ``conftest``."""
    last = module.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imports_of_test_modules(root: Path = REPO) -> list[str]:
    """Imports of a test module or a conftest, from anywhere in tests/ or bench/."""
    wrong = []
    for tree in ("tests", "bench"):
        for path in sorted((root / tree).rglob("*.py")):
            for imported in imported_modules(path):
                if imported.startswith("tests.") and is_test_module(imported):
                    wrong.append(f"{module_name(path, root)} imports {imported}")
    return wrong


def benchmarks(root: Path = REPO) -> set[str]:
    """The bench modules that are benchmarks: those run as ``python -m bench.NAME``."""
    return {
        module_name(path, root)
        for path in (root / "bench").glob("*.py")
        if '__name__ == "__main__"' in path.read_text(encoding="utf-8")
    }


def bench_imports_of_benchmarks(root: Path = REPO) -> list[str]:
    """Imports of one benchmark by another bench module (they share bench.report,
    bench.harness, their own part modules and tests.kit)."""
    runnable = benchmarks(root)
    return [
        f"{module_name(path, root)} imports {imported}"
        for path in sorted((root / "bench").glob("*.py"))
        for imported in sorted(imported_modules(path))
        if imported in runnable and imported != module_name(path, root)
    ]


def test_no_test_module_imports_another() -> None:
    assert imports_of_test_modules() == []


def test_no_benchmark_imports_another() -> None:
    assert "bench.latency" in benchmarks() and "bench.report" not in benchmarks()
    assert bench_imports_of_benchmarks() == []


def test_the_import_rules_catch_a_test_module_and_a_benchmark_import(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "bench").mkdir()
    (tmp_path / "tests" / "unit" / "test_a.py").write_text(
        "from tests.unit.test_b import helper\nfrom tests.kit import free_port\n"
    )
    (tmp_path / "tests" / "unit" / "test_c.py").write_text("import tests.conftest\n")
    (tmp_path / "bench" / "one.py").write_text(
        "from bench.two import table\nfrom bench.report import quantile\n"
        'if __name__ == "__main__":\n    pass\n'
    )
    (tmp_path / "bench" / "two.py").write_text('if __name__ == "__main__":\n    pass\n')
    assert imports_of_test_modules(tmp_path) == [
        "tests.unit.test_a imports tests.unit.test_b",
        "tests.unit.test_c imports tests.conftest",
    ]
    assert bench_imports_of_benchmarks(tmp_path) == ["bench.one imports bench.two"]
