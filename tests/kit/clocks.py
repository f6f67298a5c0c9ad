"""Time for tests: a clock moved by hand, an event loop on virtual time, and a wall clock
a daemon process sees stepped (libfaketime)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

#: Where fake clocks start: a quarter second into a calendar second.
T0 = 1_700_000_000.25

#: Debian's libfaketime, multi-threaded flavour (None where it is not installed).
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), None)


class FakeClock:
    """Wall-clock time as the test says it is; share one between simulator, client, store
    and poller, and move it by hand (no sleeping)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _VirtualTimeSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Never blocks on a timeout: when nothing is ready, time jumps to the next timer."""

    def __init__(self) -> None:
        super().__init__()
        # Small numbers keep float steps far below the loop's clock resolution (1 ns): a
        # timer due "now" must compare as due.
        self.now = 1000.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # Nothing scheduled and nothing ready: a deadlock. Block, and let pytest-timeout
            # report it rather than inventing progress.
            return list(super().select(None))
        ready = list(super().select(0))
        if not ready and timeout > 0:
            self.now += timeout
        return ready


def run_virtual(
    main: Callable[[Callable[[], float]], Coroutine[Any, Any, Any]],
) -> Any:
    """Run ``main(clock)`` on an event loop whose time is virtual: sleeps and timeouts pass
    at once, in order, whatever the machine's load. ``clock`` is the loop's time, to give to
    the code under test. Only for code that does no real I/O."""
    selector = _VirtualTimeSelector()
    loop = asyncio.SelectorEventLoop(selector)
    loop.time = lambda: selector.now  # type: ignore[method-assign]
    loop._clock_resolution = 1e-6  # type: ignore[attr-defined]
    try:
        return loop.run_until_complete(main(loop.time))
    finally:
        loop.close()


def steppable_clock(tmp_path: Path, env: dict[str, str]) -> Path:
    """Run the processes started with ``env`` on a wall clock the test steps: the file
    returned holds the offset (``+0`` now; write ``-3600`` to step an hour back)."""
    if LIBFAKETIME is None:
        pytest.skip("libfaketime missing: install Debian's libfaketime (.ci/run does)")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env.update(
        LD_PRELOAD=str(LIBFAKETIME),
        FAKETIME_TIMESTAMP_FILE=str(offset),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    return offset
