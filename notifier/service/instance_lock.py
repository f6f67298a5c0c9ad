"""One daemon per SQLite state file.

Two daemons on one state would double the vendor budget, revoke each other's access tokens and
could send one delivery twice at once. The daemon holds an exclusive ``flock`` on a file beside
the database for as long as it runs; the kernel drops it when the process dies (``kill -9``
included), so there is no stale lock to clean up. CLI commands never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another daemon holds the state file."""

    def __init__(self, message: str, holder: int | None = None) -> None:
        super().__init__(message)
        #: The holder's pid, when it wrote one.
        self.holder = holder


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


class InstanceLock:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.path = lock_path(state_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunning` naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise AlreadyRunning(
                f"{self.state_path}: another daemon ({who}) is already running on this state "
                f"file (it holds {self.path}); stop it first; to run several daemons on one "
                "vendor account share one state through PostgreSQL (state.url): two daemons "
                "with their own states revoke each other's vendor token",
                holder,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The pid is for the message above; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
