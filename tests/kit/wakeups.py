"""A daemon running in the test process, for the wake-up tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from notifier.config import load_config
from notifier.service.daemon import Daemon
from notifier.service.wakeups import Wakeups
from tests.kit import until

HOUR = 3600.0


class Running:
    """A Daemon on ``state.url`` running in this loop, its config file and CLI."""

    def __init__(self, path: Path, config: dict[str, Any], env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.daemon = Daemon(load_config(str(path)), str(path))
        self.task: asyncio.Task[int] | None = None

    @property
    def wakeups(self) -> Wakeups:
        assert self.daemon.wakeups is not None
        return self.daemon.wakeups

    async def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run())
        await until(lambda: self.daemon.wakeups is not None)
        await asyncio.wait_for(self.wakeups.listening.wait(), 20)

    async def stop(self) -> int:
        assert self.task is not None
        self.daemon.request_stop()
        return await self.task

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A CLI command in its own process; the loop (and the daemon) runs meanwhile."""
        command = [sys.executable, "-m", "notifier", "-c", str(self.path), *args]
        result = await asyncio.to_thread(
            subprocess.run, command, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result

    def wakeups_counted(self, kind: str) -> float:
        metrics = self.daemon.metrics
        metrics.refresh_live()  # as a scrape does first
        value = metrics.registry.get_sample_value("chanjing_wakeups_total", {"kind": kind})
        return value or 0.0
