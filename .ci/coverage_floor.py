"""Fail when any product module's combined coverage is under the floor (argv[1], percent).

`coverage report` enforces the overall floor; this adds the per-module one, which a high
total can hide (a module nobody tests among well-tested ones).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    floor = float(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        subprocess.run(
            [sys.executable, "-m", "coverage", "json", "--quiet", "-o", str(out)], check=True
        )
        files = json.loads(out.read_text())["files"]
    low = {
        name: data["summary"]["percent_covered"]
        for name, data in files.items()
        if data["summary"]["num_statements"] and data["summary"]["percent_covered"] < floor
    }
    for name, percent in sorted(low.items()):
        print(f"coverage floor: {name} at {percent:.1f}% (< {floor:.0f}%)", file=sys.stderr)
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
