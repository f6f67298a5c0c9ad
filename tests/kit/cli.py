"""The CLI and the daemon the way a user runs them: a workspace (config file, watch file,
environment), commands run in this process or as a child, daemons started from it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.kit.config import write_config
from tests.kit.daemon import Daemon


def run_cli(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``chanjing-notifier ARGS`` run in this process: ``notifier.cli.main`` with ``env`` as
    the environment, stdout and stderr captured. A new interpreter costs about a second of
    CPU in imports; tests about what a command does use this, tests about the process (exit
    through the interpreter, signals, closed pipes, the console script) use
    :func:`run_cli_process`."""
    from notifier.cli import main

    out, err = io.StringIO(), io.StringIO()
    # os.environ is swapped at the Python level only: putenv() while the simulator's and the
    # receiver's threads run could race with C code reading the environment. A child with its
    # output piped formats help for 80 columns; so does this, whatever the test's terminal.
    saved = os.environ
    os.environ = {"COLUMNS": "80", **env}  # type: ignore[assignment]  # noqa: B003
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help and --version
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ = saved  # noqa: B003
    return subprocess.CompletedProcess(
        ["chanjing-notifier", *args], code, out.getvalue(), err.getvalue()
    )


def run_cli_process(
    args: Sequence[str], env: Mapping[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m notifier ARGS`` as a child process (``kwargs`` go to ``subprocess.run``;
    output captured unless ``stdout`` is given)."""
    kwargs.setdefault("capture_output", "stdout" not in kwargs)
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env=dict(env),
        text=True,
        timeout=60,
        **kwargs,
    )


@dataclass
class ConfigFiles:
    """A test's config (as a dict) and where its config and watch files go."""

    tmp_path: Path
    config: dict[str, Any]

    @property
    def config_path(self) -> Path:
        return self.tmp_path / "config.yaml"

    @property
    def watch_path(self) -> Path:
        return self.tmp_path / "watch.yaml"


@dataclass
class Workspace(ConfigFiles):
    """A config file, a watch file and the env to run the CLI and the daemon with."""

    env: dict[str, str]
    processes: list[Daemon] = field(default_factory=list)

    @property
    def state_path(self) -> Path:
        return Path(self.config["state"]["path"])

    def write_config(self) -> None:
        write_config(self.config_path, self.config)

    def write_watch(self, items: list[Any]) -> None:
        tmp = self.watch_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(items, sort_keys=False))
        tmp.replace(self.watch_path)

    def enqueue_sql(self, job_id: str, labels: str | None = None) -> None:
        """INSERT into the documented queue table, as any other program would."""
        import sqlite3

        if not self.state_path.exists():
            from notifier.store import Store

            Store(self.state_path).close()  # the state file with its schema
        with sqlite3.connect(self.state_path) as db:
            db.execute("INSERT INTO watch_queue (job_id, labels) VALUES (?, ?)", (job_id, labels))

    def cli(
        self, *args: str, check: bool = True, child: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``chanjing-notifier -c CONFIG ARGS`` in this process (see :func:`run_cli`), or
        with ``child=True`` as a child ``python -m notifier``."""
        argv = ["-c", str(self.config_path), *args]
        result = run_cli_process(argv, self.env) if child else run_cli(argv, self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}: {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def start(self) -> Daemon:
        proc = Daemon.start(self.config_path, self.env)
        self.processes.append(proc)
        return proc
