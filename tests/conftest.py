"""Shared fixtures: the real simulator and receiver on 127.0.0.1, and the real daemon process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import HealthCheck, settings

from notifier import log as logs
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.pg_server import PgServer, PgUnavailable

#: Set by .ci/run for its pass with busy loops on every core: staying within the vendor
#: budget must still hold, but *using* most of it needs CPU, so that part is not checked.
#: Under pytest-xdist the workers load the cores just as much (the README's command runs the
#: suite on 4 workers); CI checks the budget's use in its serial `-m realtime` pass.
CPU_LOADED = (
    os.environ.get("CHANJING_TEST_CPU_LOADED") == "1" or "PYTEST_XDIST_WORKER" in os.environ
)
#: Set by .ci/run for its coverage pass: tracing slows the daemon and the simulator several
#: fold, more than the limiter's 50 ms guard for the lag between taking a slot and the call
#: arriving, so per-second budget counts are not checked there. CI checks them in its
#: untraced `realtime` passes (every test that counts the budget is marked `realtime`).
TRACED = os.environ.get("CHANJING_TEST_TRACED") == "1"

# Hypothesis times each example (a 200 ms deadline, a "generation is slow" check): on a
# shared two-core machine running four workers that fails tests for the machine's load, not
# for the code. What is drawn and checked is unchanged.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")

#: Where fake clocks start: a quarter second into a calendar second.
T0 = 1_700_000_000.25
SECRET_KEY = "sk-test-9f2c4e1a7b3d5e6f"
OPS_SECRET = "whsec_" + base64.b64encode(b"ops-secret-0123456789abcdef!").decode()
ANALYTICS_SECRET = "whsec_" + base64.b64encode(b"analytics-secret-0123456789xy").decode()
OLD_OPS_SECRET = "whsec_" + base64.b64encode(b"old-ops-secret-0123456789ab").decode()
SLACK_PATH = "/services/T000/B000/slacksecretpath123"


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


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the package once, in the controlling process, before any worker runs.
    With PYTHONDONTWRITEBYTECODE set (as on the shared machines) nothing else writes the
    .pyc files, and every daemon and CLI child the suite starts would compile every module
    of ours again: ~0.15 s of CPU a child. A no-op when the files are current."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        import compileall

        import notifier

        compileall.compile_dir(Path(notifier.__file__).parent, quiet=1)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Logging is process-wide: what a test configures is undone before the next one runs.
    ``notifier.log.configure`` (called by the CLI, the demo and a daemon's reload in the test
    process) sets structlog's level filter and processors, replaces the stdlib root handlers
    and sets library loggers' levels; the redactor collects every secret it is told of.
    Without this a test saw what an earlier one left (e.g. a level filter at INFO that
    hid the debug lines ``structlog.testing.capture_logs`` waits for)."""
    config = structlog.get_config()
    processors = config["processors"]
    saved_processors = list(processors)  # capture_logs edits the list in place
    manager = logging.Logger.manager
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    loggers = {
        name: (lg.level, lg.disabled, lg.propagate, list(lg.handlers))
        for name, lg in manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    disable = manager.disable
    secrets = set(logs.redactor._secrets)
    yield
    processors[:] = saved_processors
    structlog.configure(**config)
    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    for name, lg in list(manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger):
            continue
        if name not in loggers:  # made during the test: as a fresh logger is
            lg.setLevel(logging.NOTSET)
            continue
        level, lg.disabled, lg.propagate, handlers = loggers[name]
        lg.setLevel(level)
        lg.handlers[:] = handlers
    logging.disable(disable)
    logs.redactor.replace(secrets)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL for the session, started only when a test asks for it
    (``CHANJING_NOTIFIER_TEST_PG`` names an existing server instead)."""
    try:
        with PgServer.start() as server:
            yield server
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards (open connections too)."""
    url = pg_server.database()
    yield url
    pg_server.drop(url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store's behaviour tests run on both backends."""
    return str(request.param)


@pytest.fixture
def state_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a test's state lives: a fresh SQLite file or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("pg_url"))


StoreFactory = Callable[..., Store]


@pytest.fixture
def make_store(state_location: str) -> Iterator[StoreFactory]:
    """Opens stores on this test's state (each call a new connection); closes them after."""
    opened: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = Store(state_location, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def fail_as_before(store: Store, job_id: str, reason: str) -> None:
    """End a watch as the vendor's rejection of its id did before the ``rejected`` state
    (issue 18, item 7b): ``failed``, ``reason`` as its note, no event. Such rows stay in
    users' databases, and everything must still read them."""
    unseen = dict.fromkeys(("status", "progress", "create_time", "last_data"))
    args = {**unseen, "job_id": job_id, "msg": reason, "error": reason, "now": store.now()}
    with store.transaction():
        store._run("finish_watch", {**args, "state": "failed", "polled": 1, "observed": 0})


@dataclass
class Simulator:
    sim: VendorSimulator
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=10, seed=7))
    with ServerThread(sim.make_app) as server:
        yield Simulator(sim, server)


@dataclass
class ReceiverServer:
    receiver: Receiver
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    rec = Receiver({"/ops": [OPS_SECRET], "/analytics": [ANALYTICS_SECRET]})
    with ServerThread(rec.make_app) as server:
        yield ReceiverServer(rec, server)


def base_config(tmp_path: Path, sim_url: str, receiver_url: str, **sections: Any) -> dict[str, Any]:
    """A config dict on test-friendly timings; ``sections`` replace top-level keys."""
    config: dict[str, Any] = {
        "chanjing": {
            "base_url": sim_url,
            "app_id": "test-app",
            "secret_key": "${TEST_SECRET_KEY}",
            "qps": 10,
        },
        "state": {"path": str(tmp_path / "state.db")},
        "watch": {"file": str(tmp_path / "watch.yaml")},
        "polling": {"min_interval": "300ms", "max_interval": "2s", "give_up_after": "1h"},
        "delivery": {"timeout": "3s", "retry_schedule": ["200ms", "400ms", "800ms", "1s", "1s"]},
        "endpoints": [
            {
                "name": "ops",
                "type": "webhook",
                "url": f"{receiver_url}/ops",
                "secret": ["${OPS_SECRET}", "${OLD_OPS_SECRET}"],
            },
            {
                "name": "analytics",
                "type": "webhook",
                "url": f"{receiver_url}/analytics",
                "secret": "${ANALYTICS_SECRET}",
                "events": ["lip_sync.succeeded"],
            },
            {
                "name": "team",
                "type": "slack",
                "url": "${SLACK_URL}",
                "events": ["lip_sync.failed"],
            },
        ],
    }
    config.update(sections)
    return config


def daemon_env(receiver_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_NOTIFIER")}
    env.update(
        TEST_SECRET_KEY=SECRET_KEY,
        OPS_SECRET=OPS_SECRET,
        OLD_OPS_SECRET=OLD_OPS_SECRET,
        ANALYTICS_SECRET=ANALYTICS_SECRET,
        SLACK_URL=f"{receiver_url}{SLACK_PATH}",
        PYTHONUNBUFFERED="1",
    )
    return env


def secrets_for(receiver_url: str) -> list[str]:
    return [
        SECRET_KEY,
        OPS_SECRET,
        OLD_OPS_SECRET,
        ANALYTICS_SECRET,
        SLACK_PATH.strip("/"),
        f"{receiver_url}{SLACK_PATH}",
    ]


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
class Workspace:
    """A config file, a watch file and the env to run the CLI and the daemon with."""

    tmp_path: Path
    config: dict[str, Any]
    env: dict[str, str]
    processes: list[DaemonProcess] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.tmp_path / "config.yaml"

    @property
    def watch_path(self) -> Path:
        return self.tmp_path / "watch.yaml"

    @property
    def state_path(self) -> Path:
        return Path(self.config["state"]["path"])

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

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

    def start(self) -> DaemonProcess:
        proc = DaemonProcess.start(self.config_path, self.env)
        self.processes.append(proc)
        return proc


class DaemonProcess:
    """`chanjing-notifier run` as a child process; its log lines are read as they come."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, config_path: Path, env: dict[str, str]) -> DaemonProcess:
        popen = subprocess.Popen(
            [sys.executable, "-m", "notifier", "-c", str(config_path), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return cls(popen)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.output.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line, "unparsed": True})
        return out

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        def seen() -> bool:
            return any(predicate(r) for r in self.records()) or self.popen.poll() is not None

        with self._cond:
            self._cond.wait_for(seen, timeout)
        return any(predicate(r) for r in self.records())

    def wait_ready(self, timeout: float = 60.0) -> None:
        # Generous: a traced start-up on an oversubscribed machine takes tens of seconds;
        # the bound is for a daemon that never becomes ready, not a speed check.
        if not self.wait_for_log(lambda r: r.get("event") == "ready", timeout):
            raise AssertionError(f"daemon not ready:\n{self.output}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        rc = self.popen.wait(timeout)
        self._reader.join(5)
        return rc

    def kill9(self) -> None:
        self.popen.kill()
        self.popen.wait(10)
        self._reader.join(5)


@pytest.fixture
def workspace(
    tmp_path: Path, simulator: Simulator, receiver: ReceiverServer
) -> Iterator[Workspace]:
    ws = Workspace(
        tmp_path, base_config(tmp_path, simulator.url, receiver.url), daemon_env(receiver.url)
    )
    ws.write_config()
    ws.write_watch([])
    yield ws
    for proc in ws.processes:
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)
