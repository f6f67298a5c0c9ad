"""Reusable plumbing for benchmarks that run the real daemon against local stand-ins.

One benchmark run is: the vendor simulator and a verifying receiver, in this process, on
127.0.0.1 (each on its own :class:`~notifier.service.http_server.ServerThread`); a config file and a
fresh state file in a run directory; ``python -m notifier -c CONFIG run`` as a child process
(the test kit's runner, :class:`tests.kit.Daemon`, with its config and environment builders)
whose log lines go to ``daemon.log`` in that directory (never to the console); and a writer
for the daemon's SQLite intake queue. :class:`BenchRun` bundles all of it as a context
manager that always stops (and, failing that, kills) the daemon.

Nothing here sleeps to synchronise: readiness comes from the daemon itself (its sd_notify
``READY=1`` datagram, or its ``ready`` log line when the log level shows it), callbacks are
awaited with :meth:`notifier.tools.receiver.Receiver.wait_for_blocking`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from notifier.delivery.transition import build_event
from notifier.models import Event, JobDetail, WatchSpec
from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.receiver import Received, Receiver
from notifier.tools.sim_accounts import SimAccount
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import ArrivalLog, Daemon, DaemonError, free_port
from tests.kit.config import chanjing_section, clean_env, ref, webhook_endpoint
from tests.kit.config import write_config as kit_write_config

__all__ = ["ArrivalLog", "Daemon", "DaemonError", "free_port"]  # the kit's, as benchmarks use them

#: Environment variables the config refers to, so no secret is written into a file.
ENV_SECRET_KEY = "BENCH_CHANJING_SECRET_KEY"
ENV_WEBHOOK_SECRET = "BENCH_WEBHOOK_SECRET"

APP_ID = "bench-app"
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: Lip-sync's vendor status codes, for details made by hand (the vendor client reads them
#: with the kind table).
STATUS_SUCCESS = 20


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
        accounts: Sequence[SimAccount] = (),
    ) -> None:
        """``accounts``: vendor accounts served besides ``credentials``' (the first)."""
        self.sim = VendorSimulator(
            SimConfig(
                app_id=credentials.app_id,
                secret_key=credentials.secret_key,
                qps=qps,
                seed=seed,
                accounts=tuple(accounts),
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
    eps = [
        webhook_endpoint(ep.name, f"{receiver_url}{ep.path}", ref(ENV_WEBHOOK_SECRET), ep.events)
        for ep in endpoints
    ]
    return {
        "chanjing": chanjing_section(sim_url, app_id, ref(ENV_SECRET_KEY), qps),
        "state": {"path": str(state_path)},
        "polling": dict(polling or {}),
        "delivery": dict(delivery or {}),
        "endpoints": eps,
        "log": {"level": log_level},
        **dict(sections or {}),
    }


def daemon_env(credentials: Credentials, **extra: str) -> dict[str, str]:
    """This process's environment without anything that would steer the daemon elsewhere."""
    return clean_env(
        ("CHANJING_NOTIFIER", "NOTIFY_SOCKET", "WATCHDOG_"),
        **{ENV_SECRET_KEY: credentials.secret_key, ENV_WEBHOOK_SECRET: credentials.webhook_secret},
        **extra,
    )


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """The config file, readable by its owner only (it names the secrets' variables)."""
    kit_write_config(path, config, 0o600)


def start_daemon(config_path: Path, env: Mapping[str, str], log_path: Path) -> Daemon:
    """The daemon on ``config_path``, its log to ``log_path``, its sd_notify messages
    received (readiness at any log level)."""
    return Daemon.start(config_path, env, log_path=log_path, notify=True)


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


# --------------------------------------------------------------------------- /proc


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds, from ``/proc/PID/stat``."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in MB, from ``/proc/PID/status``."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0  # kB
    return out


@dataclass
class CpuWindow:
    """CPU used by a process between :meth:`start` and :meth:`stop`, as % of one core."""

    pid: int
    cpu0: float = 0.0
    wall0: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def start(self) -> CpuWindow:
        self.cpu0 = proc_cpu_seconds(self.pid)
        self.wall0 = time.monotonic()
        return self

    def stop(self) -> float:
        self.cpu_s = proc_cpu_seconds(self.pid) - self.cpu0
        self.wall_s = time.monotonic() - self.wall0
        return self.percent

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


# --------------------------------------------------------------------------- delivered state


def job_id(i: int) -> str:
    return f"job-{i:06d}"


def make_events(n: int, now: float) -> list[tuple[JobDetail, Event]]:
    """N succeeded jobs and their events, as the poller would build them."""
    out = []
    for i in range(n):
        jid = job_id(i)
        detail = JobDetail(
            jid,
            STATUS_SUCCESS,
            100,
            "success",
            f"https://cdn.example.invalid/videos/{jid}.mp4",
            f"https://cdn.example.invalid/videos/{jid}.jpg",
            12_345,
            int(now) - 120,
        )
        out.append((detail, build_event(detail, {"customer": "bench"}, now, now - 1)))
    return out


def build_state(path: Path, n: int, endpoints: Sequence[str]) -> float:
    """A state file with N terminal events, each with a pending delivery per endpoint;
    returns the seconds it took."""
    began = time.perf_counter()
    store = Store(path)
    try:
        with store.transaction():
            specs = [WatchSpec(job_id(i), {"customer": "bench"}) for i in range(n)]
            store.add_watches(specs, "queue")
            for detail, event in make_events(n, time.time()):
                store.record_terminal(detail, event, list(endpoints))
    finally:
        store.close()
    return time.perf_counter() - began


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
            self._daemon = start_daemon(self.config_path, env, self.log_path)
            self.startup_s = self._daemon.wait_ready(self._ready_timeout)
        except BaseException:
            self.close()
            raise
        return self

    def stop_daemon(self) -> int | None:
        """Stop the daemon gracefully now (servers stay up for reading stats)."""
        return None if self._daemon is None else self._daemon.terminate()

    def restart_daemon(self, log_name: str = "daemon-2.log") -> Daemon:
        """A new daemon process on the same config and state (after :meth:`stop_daemon`)."""
        if self._daemon is not None:
            self._daemon.close()
        self._daemon = start_daemon(
            self.config_path, daemon_env(self.credentials, **self._env), self.run_dir / log_name
        )
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


@contextlib.contextmanager
def work_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A temp dir for a benchmark's state files and daemon logs: removed afterwards unless
    ``keep`` (``--keep``), then its path is printed."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"state files and daemon logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def install_sigterm_exit() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the daemon on the way out."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
