"""Reusable plumbing for benchmarks that run the real daemon against local stand-ins.

One benchmark run is: the vendor simulator and a verifying receiver, in this process, on
127.0.0.1 (each on its own :class:`~notifier.service.http_server.ServerThread`); a config file and a
fresh state file in a run directory; ``python -m notifier -c CONFIG run`` as a child process
whose log lines go to ``daemon.log`` in that directory (never to the console); and a writer
for the daemon's SQLite intake queue. :class:`BenchRun` bundles all of it as a context
manager that always stops (and, failing that, kills) the daemon.

Nothing here sleeps to synchronise: readiness comes from the daemon itself (its sd_notify
``READY=1`` datagram, or its ``ready`` log line when the log level shows it), callbacks are
awaited with :meth:`notifier.tools.receiver.Receiver.wait_for_blocking`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from notifier.models import WatchSpec
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.receiver import Received, Receiver
from notifier.tools.simulator import API_PREFIX, SimConfig, VendorSimulator

#: Environment variables the config refers to, so no secret is written into a file.
ENV_SECRET_KEY = "BENCH_CHANJING_SECRET_KEY"
ENV_WEBHOOK_SECRET = "BENCH_WEBHOOK_SECRET"

APP_ID = "bench-app"
STOP_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """Vendor credentials for the simulator and one webhook signing secret."""

    app_id: str
    secret_key: str
    webhook_secret: str

    @classmethod
    def generate(cls) -> Credentials:
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        return cls(
            app_id=APP_ID, secret_key="sk-bench-" + os.urandom(12).hex(), webhook_secret=secret
        )


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class EndpointSpec:
    """A webhook endpoint of the daemon, served by the receiver at ``path``.

    ``delay_s`` makes the receiver answer that path slowly (a slow customer endpoint).
    """

    name: str
    path: str
    delay_s: float = 0.0
    events: tuple[str, ...] | None = None


class Servers:
    """The vendor simulator and the receiver, each on its own loopback server thread."""

    def __init__(
        self,
        credentials: Credentials,
        endpoints: Sequence[EndpointSpec],
        *,
        qps: int = 10,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        arrivals: ArrivalLog | None = None,
    ) -> None:
        self.sim = VendorSimulator(
            SimConfig(
                app_id=credentials.app_id,
                secret_key=credentials.secret_key,
                qps=qps,
                seed=seed,
            ),
            clock=clock,
        )
        self.receiver = Receiver(
            {ep.path: [credentials.webhook_secret] for ep in endpoints}, clock=clock
        )
        for ep in endpoints:
            if ep.delay_s > 0:
                self.receiver.set_delay(ep.path, ep.delay_s)
        make_sim = self.sim.make_app if arrivals is None else arrivals.wrap(self.sim.make_app)
        self._sim_server = ServerThread(make_sim)
        self._receiver_server = ServerThread(self.receiver.make_app)

    @property
    def sim_url(self) -> str:
        return self._sim_server.url

    @property
    def receiver_url(self) -> str:
        return self._receiver_server.url

    def start(self) -> Servers:
        self._sim_server.start()
        try:
            self._receiver_server.start()
        except BaseException:
            self._sim_server.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self._receiver_server.stop()
        finally:
            self._sim_server.stop()

    def __enter__(self) -> Servers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ArrivalLog:
    """Each vendor call as it reaches the simulator: when (``time.time()``), and which of the
    :meth:`watch`-ed processes sent it.

    The simulator counts calls per second but not who made them; with several daemons on one
    vendor account a benchmark needs the first call of a new lease holder, and a test the
    calls of one node. The sender is found once per connection, from the client socket's
    port in ``/proc/net/tcp`` and the processes' open sockets (Linux only; None when none of
    the watched processes has that socket).
    """

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int | None]] = []
        self._pids: list[int] = []
        self._owners: dict[int, int | None] = {}
        self._lock = threading.Lock()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._pids.append(pid)

    def wrap(self, make_app: Callable[[], web.Application]) -> Callable[[], web.Application]:
        """The simulator's app factory with this log in front of its own middleware."""

        def make() -> web.Application:
            app = make_app()

            @web.middleware
            async def record(request: web.Request, handler: Any) -> web.StreamResponse:
                if request.path.startswith(API_PREFIX):
                    self._arrive(request)
                response: web.StreamResponse = await handler(request)
                return response

            app.middlewares.insert(0, record)
            return app

        return make

    def _arrive(self, request: web.Request) -> None:
        now = time.time()
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        here = transport.get_extra_info("sockname") if transport else None
        port = int(peer[1]) if peer else -1
        with self._lock:
            if self._owners.get(port) is None:  # unknown yet, or not found last time
                self._owners[port] = _socket_owner(port, int(here[1]) if here else -1, self._pids)
            self.arrivals.append((now, self._owners[port]))

    def times(self, pid: int | None = None, since: float = 0.0) -> list[float]:
        """Arrival times from ``since`` on (of ``pid``'s calls only, if given)."""
        with self._lock:
            return [t for t, who in self.arrivals if t >= since and (pid is None or who == pid)]


def _socket_owner(port: int, server_port: int, pids: Sequence[int]) -> int | None:
    """The process among ``pids`` holding the loopback TCP socket from ``port`` to
    ``server_port``."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == port
                    and int(remote.rsplit(":", 1)[1], 16) == server_port
                ):
                    inode = fields[9]
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                        return pid
    return None


def free_port() -> int:
    """A loopback port free right now (for a listener the daemon's config names)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- config


def daemon_config(
    *,
    state_path: Path,
    sim_url: str,
    receiver_url: str,
    endpoints: Sequence[EndpointSpec],
    qps: int = 10,
    polling: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    log_level: str = "warning",
    app_id: str = APP_ID,
    sections: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A daemon config (as a dict) pointing at the local simulator and receiver.

    Secrets are ``${VAR}`` references, filled in from :func:`daemon_env`. ``sections``: more
    top-level sections (e.g. ``intake``).
    """
    eps: list[dict[str, Any]] = []
    for ep in endpoints:
        entry: dict[str, Any] = {
            "name": ep.name,
            "type": "webhook",
            "url": f"{receiver_url}{ep.path}",
            "secret": "${" + ENV_WEBHOOK_SECRET + "}",
        }
        if ep.events is not None:
            entry["events"] = list(ep.events)
        eps.append(entry)
    return {
        "chanjing": {
            "base_url": sim_url,
            "app_id": app_id,
            "secret_key": "${" + ENV_SECRET_KEY + "}",
            "qps": qps,
        },
        "state": {"path": str(state_path)},
        "polling": dict(polling or {}),
        "delivery": dict(delivery or {}),
        "endpoints": eps,
        "log": {"level": log_level},
        **dict(sections or {}),
    }


def daemon_env(credentials: Credentials, **extra: str) -> dict[str, str]:
    """This process's environment without anything that would steer the daemon elsewhere."""
    drop = ("CHANJING_NOTIFIER", "NOTIFY_SOCKET", "WATCHDOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env[ENV_SECRET_KEY] = credentials.secret_key
    env[ENV_WEBHOOK_SECRET] = credentials.webhook_secret
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    path.chmod(0o600)


# --------------------------------------------------------------------------- the daemon

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers() -> None:
    """Last resort at interpreter exit: no daemon outlives the benchmark."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


atexit.register(_kill_leftovers)


class DaemonError(RuntimeError):
    """The daemon did not start, or misbehaved in a way the benchmark cannot measure around."""


class Daemon:
    """``python -m notifier -c CONFIG run`` as a child process.

    Its stdout and stderr are copied line by line into ``log_path`` (and kept, parsed, in
    :attr:`records`). A private ``NOTIFY_SOCKET`` receives its sd_notify messages, so
    readiness is known at any log level. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, config_path: Path, env: Mapping[str, str], log_path: Path, *, python: str = ""
    ) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self._env = dict(env)
        self._python = python or sys.executable
        self._cond = threading.Condition()
        self.records: list[dict[str, Any]] = []
        self.notifications: list[tuple[float, str]] = []
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.returncode: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._sock_dir: str | None = None
        self._sock: socket.socket | None = None
        self._closing = threading.Event()

    # -- start ----------------------------------------------------------------------------

    def start(self) -> Daemon:
        # A short path: AF_UNIX addresses are limited to ~107 bytes.
        self._sock_dir = tempfile.mkdtemp(prefix="cjn-bench-")
        sock_path = os.path.join(self._sock_dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(sock_path)
        self._sock.settimeout(0.5)  # only so the listener notices close(); not a sync wait
        env = dict(self._env, NOTIFY_SOCKET=sock_path)
        self.started_at = time.time()
        self._popen = subprocess.Popen(
            [self._python, "-m", "notifier", "-c", str(self.config_path), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with _LIVE_LOCK:
            _LIVE.add(self._popen)
        for target, name in ((self._read_log, "log"), (self._read_notify, "notify")):
            thread = threading.Thread(target=target, name=f"daemon-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def _read_log(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        with self.log_path.open("wb") as out:
            for raw in self._popen.stdout:
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    record = {"event": line, "unparsed": True}
                with self._cond:
                    self.records.append(record)
                    if record.get("event") == "ready" and self.ready_at is None:
                        self.ready_at = time.time()
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_notify(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._closing.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            now = time.time()
            with self._cond:
                for line in data.decode("utf-8", "replace").splitlines():
                    self.notifications.append((now, line))
                    if line == "READY=1" and self.ready_at is None:
                        self.ready_at = now
                self._cond.notify_all()

    # -- waits ----------------------------------------------------------------------------

    def _exited(self) -> bool:
        return self._popen is None or self._popen.poll() is not None

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until the daemon says it is ready; return seconds from start to ready."""
        with self._cond:
            self._cond.wait_for(lambda: self.ready_at is not None or self._exited(), timeout)
            ready_at = self.ready_at
        if ready_at is None or self.started_at is None:
            state = "exited" if self._exited() else f"not ready after {timeout:.0f} s"
            raise DaemonError(f"daemon {state}; log tail:\n{self.log_tail()}")
        return ready_at - self.started_at

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Block until a log record satisfies ``predicate`` (False on timeout or exit)."""
        seen = 0

        def matched() -> bool:
            nonlocal seen
            while seen < len(self.records):
                if predicate(self.records[seen]):
                    return True
                seen += 1
            return self._exited()

        with self._cond:
            self._cond.wait_for(matched, timeout)
            return any(predicate(r) for r in self.records)

    def problems(self) -> list[dict[str, Any]]:
        """Log records at warning level or above, and lines that were not JSON."""
        with self._cond:
            return [
                r
                for r in self.records
                if r.get("unparsed") or r.get("level") in ("warning", "error", "critical")
            ]

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- stop -----------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        proc = self._popen
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                self.returncode = proc.wait(10)
        finally:
            if proc.poll() is None:  # interrupted while waiting: never leave it behind
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            with _LIVE_LOCK:
                _LIVE.discard(proc)
        return self.returncode

    def close(self) -> None:
        """Stop the daemon if needed and release the threads, socket and temp dir."""
        try:
            self.stop()
        finally:
            self._closing.set()
            for thread in self._threads:
                thread.join(5)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._sock_dir is not None:
                shutil.rmtree(self._sock_dir, ignore_errors=True)
                self._sock_dir = None

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- intake


class Intake:
    """Writes watches into the daemon's queue through :meth:`Store.enqueue` (a state file, or
    a ``postgresql://`` URL).

    The same path any other program takes; the daemon picks rows up within a second or so.
    Opening it before the daemon starts creates the state file with its schema.
    """

    def __init__(self, state_path: Path | str) -> None:
        self._store = Store(state_path)

    def watch(self, job_ids: Iterable[str], labels: Mapping[str, str] | None = None) -> int:
        specs = [WatchSpec(job_id, dict(labels or {})) for job_id in job_ids]
        return self._store.enqueue(specs) if specs else 0

    def close(self) -> None:
        self._store.close()


# --------------------------------------------------------------------------- callbacks


@dataclass
class CallbackTracker:
    """First accepted callback per job on one receiver path, found incrementally.

    The receiver calls the predicate on every request, so it must not rescan everything.
    """

    receiver: Receiver
    path: str
    first: dict[str, Received] = field(default_factory=dict)
    #: Distinct webhook ids seen per job: more than one means a duplicate event.
    event_ids: dict[str, set[str]] = field(default_factory=dict)
    attempts: int = 0
    failed_verification: int = 0
    _pos: int = 0

    def _scan(self, receiver: Receiver) -> None:
        records = receiver.received  # called under the receiver's lock
        while self._pos < len(records):
            record = records[self._pos]
            self._pos += 1
            if record.path != self.path:
                continue
            self.attempts += 1
            if record.verified is False:
                self.failed_verification += 1
                continue
            data = record.payload.get("data") if isinstance(record.payload, dict) else None
            job_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(job_id, str):
                continue
            if record.webhook_id:
                self.event_ids.setdefault(job_id, set()).add(record.webhook_id)
            known = self.first.get(job_id)
            if known is None or record.received_at < known.received_at:
                self.first[job_id] = record

    def wait_all(self, job_ids: Iterable[str], timeout: float) -> set[str]:
        """Block until every job in ``job_ids`` had a callback; return the missing ones."""
        wanted = set(job_ids)

        def done(receiver: Receiver) -> bool:
            self._scan(receiver)
            return wanted.issubset(self.first)

        self.receiver.wait_for_blocking(done, max(0.0, timeout))
        return wanted - set(self.first)

    def detection_latencies(
        self, sim_jobs: Mapping[str, Mapping[str, Any]], job_ids: Iterable[str]
    ) -> dict[str, float]:
        """Seconds from the simulator's completion to the first webhook, per detected job
        (``sim_jobs``: ``VendorSimulator.stats()["jobs"]``; one wall clock for both)."""
        return {
            job_id: self.first[job_id].received_at - float(sim_jobs[job_id]["completed_at"])
            for job_id in job_ids
            if job_id in self.first
        }


# --------------------------------------------------------------------------- one run


class BenchRun:
    """Servers + config + state + daemon + intake in ``run_dir``, torn down in any case.

    ``run_dir`` is emptied of a previous run's state, config and log first.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        qps: int = 10,
        seed: int | None = None,
        polling: Mapping[str, Any] | None = None,
        delivery: Mapping[str, Any] | None = None,
        endpoints: Sequence[EndpointSpec] = (EndpointSpec("bench", "/hook"),),
        log_level: str = "warning",
        credentials: Credentials | None = None,
        ready_timeout: float = 60.0,
        state_dir: Path | None = None,
        sections: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.run_dir = run_dir
        #: Where the state file lives (a fault benchmark puts it on a small filesystem).
        self.state_dir = state_dir or run_dir
        self.qps = qps
        self.endpoints = list(endpoints)
        self.credentials = credentials or Credentials.generate()
        self._seed = seed
        self._polling = dict(polling or {})
        self._delivery = dict(delivery or {})
        self._log_level = log_level
        self._ready_timeout = ready_timeout
        self._sections = dict(sections or {})
        self._env = dict(env or {})
        self._servers: Servers | None = None
        self._daemon: Daemon | None = None
        self._intake: Intake | None = None
        self.config: dict[str, Any] = {}
        #: Seconds from spawning the daemon to its readiness.
        self.startup_s: float | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.yaml"

    @property
    def state_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "daemon.log"

    @property
    def servers(self) -> Servers:
        assert self._servers is not None, "run not started"
        return self._servers

    @property
    def sim(self) -> VendorSimulator:
        return self.servers.sim

    @property
    def receiver(self) -> Receiver:
        return self.servers.receiver

    @property
    def daemon(self) -> Daemon:
        assert self._daemon is not None, "run not started"
        return self._daemon

    @property
    def intake(self) -> Intake:
        assert self._intake is not None, "run not started"
        return self._intake

    def tracker(self, endpoint: str | None = None) -> CallbackTracker:
        """A callback tracker for one endpoint (by name; default: the first)."""
        spec = next((e for e in self.endpoints if e.name == endpoint), self.endpoints[0])
        return CallbackTracker(self.receiver, spec.path)

    def _clean(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("state.db", "state.db-wal", "state.db-shm", "config.yaml", "daemon.log"):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()

    def start(self) -> BenchRun:
        self._clean()
        try:
            self._servers = Servers(
                self.credentials, self.endpoints, qps=self.qps, seed=self._seed
            ).start()
            self.config = daemon_config(
                state_path=self.state_path,
                sim_url=self.servers.sim_url,
                receiver_url=self.servers.receiver_url,
                endpoints=self.endpoints,
                qps=self.qps,
                polling=self._polling,
                delivery=self._delivery,
                log_level=self._log_level,
                app_id=self.credentials.app_id,
                sections=self._sections,
            )
            write_config(self.config_path, self.config)
            self._intake = Intake(self.state_path)
            env = daemon_env(self.credentials, **self._env)
            self._daemon = Daemon(self.config_path, env, self.log_path)
            self._daemon.start()
            self.startup_s = self._daemon.wait_ready(self._ready_timeout)
        except BaseException:
            self.close()
            raise
        return self

    def stop_daemon(self) -> int | None:
        """Stop the daemon gracefully now (servers stay up for reading stats)."""
        return None if self._daemon is None else self._daemon.stop()

    def restart_daemon(self, log_name: str = "daemon-2.log") -> Daemon:
        """A new daemon process on the same config and state (after :meth:`stop_daemon`)."""
        if self._daemon is not None:
            self._daemon.close()
        self._daemon = Daemon(
            self.config_path, daemon_env(self.credentials, **self._env), self.run_dir / log_name
        ).start()
        self._daemon.wait_ready(self._ready_timeout)
        return self._daemon

    def close(self) -> None:
        try:
            if self._daemon is not None:
                self._daemon.close()
        finally:
            try:
                if self._intake is not None:
                    self._intake.close()
                    self._intake = None
            finally:
                if self._servers is not None:
                    self._servers.stop()
                    self._servers = None

    def __enter__(self) -> BenchRun:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def install_sigterm_exit() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the daemon on the way out."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
