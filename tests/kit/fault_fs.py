"""A real small filesystem for disk-full tests: a tmpfs of a few hundred KiB, filled and freed
on demand. Mounting needs root (CI runs as root); elsewhere the tests that use it are skipped
with the reason."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        """Take every free block, so the next write that needs space fails with ENOSPC."""
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
                with contextlib.suppress(OSError):
                    while f.write(b"\0" * size):
                        pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def available(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[SmallDisk]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
