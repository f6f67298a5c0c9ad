"""How every benchmark reports: text tables, quantiles, PASS/FAIL lines, and the machine and
the git state a result was measured on (written into each benchmark's JSON).

One place for these, so the benchmarks print alike and no benchmark imports another for its
table or its quantile.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- tables


def table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    *,
    align: str = "l",
    rule: bool = False,
    sep: str = "  ",
    min_widths: Sequence[int] = (),
    pad_last: bool = True,
) -> str:
    """Rows of cells as aligned text columns.

    ``align``: one letter a column, ``l`` (left) or ``r`` (right); the last letter holds for
    the columns after it. ``rule``: a line of dashes under the header. ``min_widths``: the
    least width of the first columns. ``pad_last=False`` leaves the last column unpadded (its
    cells free text).
    """
    lines = ([list(header)] if header is not None else []) + [list(r) for r in rows]
    if not lines:
        return ""
    count = len(lines[0])
    widths = [max(len(line[i]) for line in lines) for i in range(count)]
    for i, least in enumerate(min_widths):
        widths[i] = max(widths[i], least)

    def cells(line: Sequence[str]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(line, widths, strict=True)):
            side = align[min(i, len(align) - 1)]
            if i == count - 1 and not pad_last:
                out.append(cell)
            else:
                out.append(cell.rjust(width) if side == "r" else cell.ljust(width))
        return sep.join(out)

    text = [cells(line) for line in lines]
    if rule and header is not None:
        text.insert(1, sep.join("-" * w for w in widths))
    return "\n".join(text)


def fmt(value: float | None, spec: str = "{:.1f}") -> str:
    """A number for a table cell; ``-`` when there is none."""
    return "-" if value is None else spec.format(value)


# --------------------------------------------------------------------------- quantiles

Method = Literal["linear", "nearest", "lower"]


def quantile(values: Sequence[float], q: float, method: Method = "linear") -> float:
    """The ``q`` quantile (0..1) of ``values``; NaN when there are none.

    ``linear``: interpolation between the closest ranks (numpy's default); ``nearest``: the
    value at rank ``round(q * (n - 1))``; ``lower``: the value at rank ``floor(q * n)``
    (capped). Each benchmark keeps the method its published numbers were computed with.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    last = len(ordered) - 1
    if method == "nearest":
        return ordered[min(last, round(q * last))]
    if method == "lower":
        return ordered[min(last, int(q * len(ordered)))]
    pos = last * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --------------------------------------------------------------------------- verdicts


def verdict(ok: bool | None, name: str, detail: str = "", *, missed: str = "FAIL") -> str:
    """One target's line: ``PASS``, ``FAIL`` (or ``missed``), or ``INFO`` when it could not
    be judged (``ok`` None); ``detail`` in brackets after the name."""
    word = "INFO" if ok is None else "PASS" if ok else missed
    return f"{word}  {name}" + (f"  ({detail})" if detail else "")


# --------------------------------------------------------------------------- machine, git


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPUs, Python, platform."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit measured, and files changed since (the daemon runs from the work tree)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "notifier")
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "modified": [line[3:] for line in status.splitlines()] if status else [],
    }
