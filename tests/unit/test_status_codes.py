"""Only the kind table (``notifier/kinds.py``) and the vendor client know what a vendor
status code means (issue 21): every other module works with phases. Each kind has codes of its
own (video's 30 is a success, lip-sync's a failure), so a code read anywhere else would
misreport some kind silently. The simulator plays the vendor and is exempt."""

from __future__ import annotations

import ast
from pathlib import Path

import notifier

ROOT = Path(notifier.__file__).parent
#: Where vendor status codes may be written.
ALLOWED = {"kinds.py", "polling/vendor.py"}
#: The simulator is the vendor: it must speak its codes.
SIMULATOR = ("tools/simulator.py", "tools/sim_")
#: Names that stood for lip-sync codes before the kind table.
OLD_NAMES = {"STATUS_QUEUED", "STATUS_GENERATING", "STATUS_SUCCESS", "STATUS_FAILED"}
OLD_NAMES |= {"TERMINAL_EVENT", "KNOWN_STATUSES"}


def _is_status(node: ast.AST) -> bool:
    name = (
        node.attr
        if isinstance(node, ast.Attribute)
        else node.id
        if isinstance(node, ast.Name)
        else _key(node)
        if isinstance(node, ast.Subscript)
        else None
    )
    return isinstance(name, str) and "status" in name.lower() and "code" not in name.lower()


def _key(node: ast.Subscript) -> str | None:
    key = node.slice
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _small_ints(node: ast.AST) -> bool:
    """Constants that read like vendor codes (HTTP statuses, 100 and over, do not)."""
    values = node.elts if isinstance(node, ast.Tuple | ast.Set | ast.List) else [node]
    return bool(values) and all(
        isinstance(v, ast.Constant)
        and isinstance(v.value, int)
        and not isinstance(v.value, bool)
        and 0 <= v.value < 100
        for v in values
    )


def findings(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(s) for s in sides) and any(_small_ints(s) for s in sides):
                found.append(f"line {node.lineno}: a status compared with a code")
        elif isinstance(node, ast.Dict) and any(_small_ints(k) for k in node.keys if k):
            ints = [k for k in node.keys if k is not None and _small_ints(k)]
            if len(ints) >= 2:
                found.append(f"line {node.lineno}: a table keyed by status codes")
        elif isinstance(node, ast.Name | ast.alias):
            name = node.id if isinstance(node, ast.Name) else node.name
            if name in OLD_NAMES:
                found.append(f"line {getattr(node, 'lineno', '?')}: {name}")
    return found


def test_no_module_outside_the_kind_table_and_the_vendor_client_knows_a_status_code() -> None:
    bad = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED or rel.startswith(SIMULATOR):
            continue
        found = findings(path.read_text(encoding="utf-8"))
        if found:
            bad[rel] = found
    assert bad == {}


def test_the_rule_catches_a_status_code() -> None:
    assert findings("if detail.status == 20: pass")
    assert findings("ok = row['status'] in (20, 30)")
    assert findings("TEXT = {0: 'queued', 10: 'generating'}")
    assert findings("from notifier.models import STATUS_SUCCESS")
    # Not vendor codes: HTTP statuses and phases.
    assert not findings("if response.status == 429: pass")
    assert not findings("if detail.phase is Phase.SUCCEEDED: pass")
    assert not findings("if status_code == 0: pass")
