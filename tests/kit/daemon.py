"""The daemon as a child process, for tests and benchmarks alike: ``python -m notifier -c
CONFIG run``, its log lines read as they come (kept parsed, and copied to a file if asked),
its sd_notify messages on a private socket if asked, and never left running.

Nothing here sleeps to synchronise: readiness is the daemon's own ``READY=1`` datagram or its
``ready`` log line, and every wait is on a condition the reader threads signal.
"""

from __future__ import annotations

import atexit
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
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

STOP_TIMEOUT_S = 15.0

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers() -> None:
    """Last resort at interpreter exit: no daemon outlives the test run or the benchmark."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


atexit.register(_kill_leftovers)


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records every message
    with ``clock()`` at its arrival. ``on_line`` is told of each line as it comes. An
    address starting with ``@`` is in the abstract namespace."""

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_line: Callable[[float, str], None] | None = None,
    ) -> None:
        self.address = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bind_to = "\0" + path[1:] if path.startswith("@") else path
        self.sock.bind(bind_to)
        self.messages: list[tuple[float, str]] = []
        self._clock = clock
        self._on_line = on_line
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:  # shut down by close()
                return
            now = self._clock()
            text = data.decode("utf-8", "replace")
            with self._cond:
                self.messages.append((now, text))
                self._cond.notify_all()
            if self._on_line is not None:
                for line in text.splitlines():
                    self._on_line(now, line)

    def lines(self) -> list[tuple[float, str]]:
        with self._cond:
            return [(t, line) for t, m in self.messages for line in m.splitlines()]

    def wait_for(self, predicate: object, timeout: float) -> bool:
        assert callable(predicate)
        with self._cond:
            return bool(self._cond.wait_for(lambda: predicate(self), timeout))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv()
        self.sock.close()
        self._thread.join(5)


class DaemonError(AssertionError):
    """The daemon did not start, or misbehaved in a way a test or a benchmark cannot work
    around (an AssertionError, so a test reports it as its failure)."""


def _parse(line: str) -> dict[str, Any]:
    """A log line as its JSON object; anything else as ``{"event": line, "unparsed": True}``."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"event": line, "unparsed": True}


class Daemon:
    """``python -m notifier -c CONFIG run`` as a child process; start one with
    :meth:`start`.

    Its stdout and stderr are read line by line (:attr:`lines`, :meth:`records`) and copied
    to ``log_path`` when given. With ``notify=True`` a private ``NOTIFY_SOCKET`` receives
    its sd_notify messages (:attr:`notifications`), so readiness is known at any log level.
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        notify: NotifySocket | None = None,
        sock_dir: str | None = None,
        started_at: float | None = None,
    ) -> None:
        self.popen = popen
        #: The environment it was started with (without the private NOTIFY_SOCKET).
        self.env = dict(env or {})
        self.log_path = log_path
        self.lines: list[str] = []
        self._records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.started_at = time.time() if started_at is None else started_at
        #: When the daemon said it was ready (``time.time()``), by sd_notify or its log.
        self.ready_at: float | None = None
        self.returncode: int | None = None
        self._notify = notify
        self._sock_dir = sock_dir
        with _LIVE_LOCK:
            _LIVE.add(popen)
        self._reader = threading.Thread(target=self._read, name="daemon-log", daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        config_path: Path,
        env: Mapping[str, str],
        *,
        log_path: Path | None = None,
        notify: bool = False,
        python: str = "",
    ) -> Daemon:
        """Spawn the daemon on ``config_path`` with exactly ``env`` as its environment."""
        given = dict(env)
        env = dict(env)
        sock_dir = None
        notify_socket = None
        ready: list[Daemon] = []
        if notify:
            # A short path: AF_UNIX addresses are limited to ~107 bytes.
            sock_dir = tempfile.mkdtemp(prefix="cjn-notify-")
            path = os.path.join(sock_dir, "notify")

            def on_line(now: float, line: str) -> None:
                if ready:
                    ready[0]._notified(now, line)

            notify_socket = NotifySocket(path, clock=time.time, on_line=on_line)
            env["NOTIFY_SOCKET"] = path
        started_at = time.time()
        popen = subprocess.Popen(
            [python or sys.executable, "-m", "notifier", "-c", str(config_path), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        daemon = cls(
            popen,
            env=given,
            log_path=log_path,
            notify=notify_socket,
            sock_dir=sock_dir,
            started_at=started_at,
        )
        ready.append(daemon)
        if notify_socket is not None:  # a READY=1 that came before the daemon object
            for now, line in notify_socket.lines():
                daemon._notified(now, line)
        return daemon

    # -- reading --------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.popen.stdout is not None
        out = self.log_path.open("wb") if self.log_path is not None else None
        try:
            for raw in self.popen.stdout:
                if out is not None:
                    out.write(raw)
                    out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                record = _parse(line)
                with self._cond:
                    self.lines.append(line)
                    self._records.append(record)
                    if record.get("event") == "ready" and self.ready_at is None:
                        self.ready_at = time.time()
                    self._cond.notify_all()
        finally:
            if out is not None:
                out.close()
            with self._cond:
                self._cond.notify_all()

    def _notified(self, now: float, line: str) -> None:
        with self._cond:
            if line == "READY=1" and self.ready_at is None:
                self.ready_at = now
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def notifications(self) -> list[tuple[float, str]]:
        """The sd_notify lines received, with their ``time.time()`` (``notify=True`` only)."""
        return [] if self._notify is None else self._notify.lines()

    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def records(self) -> list[dict[str, Any]]:
        """Every log line so far, parsed (see :func:`_parse`)."""
        with self._cond:
            return list(self._records)

    def problems(self) -> list[dict[str, Any]]:
        """Log records at warning level or above, and lines that were not JSON."""
        return [
            r
            for r in self.records()
            if r.get("unparsed") or r.get("level") in ("warning", "error", "critical")
        ]

    def log_tail(self, lines: int = 30) -> str:
        with self._cond:
            return "\n".join(self.lines[-lines:]) if self.lines else "(no log)"

    # -- waits ----------------------------------------------------------------------------

    def _exited(self) -> bool:
        return self.popen.poll() is not None

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Block until a log record satisfies ``predicate`` (False on timeout or exit).
        Each record is asked once as it comes, then all of them once more at the end."""
        seen = 0

        def matched() -> bool:
            nonlocal seen
            while seen < len(self._records):
                if predicate(self._records[seen]):
                    return True
                seen += 1
            return self._exited()

        with self._cond:
            self._cond.wait_for(matched, timeout)
            return any(predicate(r) for r in self._records)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until the daemon says it is ready; the seconds from spawn to ready.
        Generous by default: a traced start-up on an oversubscribed machine takes tens of
        seconds; the bound is for a daemon that never becomes ready, not a speed check."""
        with self._cond:
            self._cond.wait_for(lambda: self.ready_at is not None or self._exited(), timeout)
            ready_at = self.ready_at
        if ready_at is None:
            state = "exited" if self._exited() else f"not ready after {timeout:.0f} s"
            raise DaemonError(f"daemon {state}; its log:\n{self.log_tail(200)}")
        return ready_at - self.started_at

    # -- stopping -------------------------------------------------------------------------

    def _reaped(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self.popen)
        self._reader.join(5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send ``sig`` and wait for the exit code (TimeoutExpired if it does not exit:
        a daemon that ignores SIGTERM is a failure)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        self.returncode = self.popen.wait(timeout)
        self._reaped()
        return self.returncode

    def kill9(self) -> None:
        self.popen.kill()
        self.popen.wait(10)
        self._reaped()

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL: never left running. The exit code."""
        proc = self.popen
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
            self._reaped()
        return self.returncode

    def close(self) -> None:
        """Stop the daemon if needed and release the threads, socket and temp dir."""
        try:
            self.terminate()
        finally:
            if self._notify is not None:
                self._notify.close()
                self._notify = None
            if self._sock_dir is not None:
                shutil.rmtree(self._sock_dir, ignore_errors=True)
                self._sock_dir = None

    def __enter__(self) -> Daemon:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: The name the tests know the runner by.
DaemonProcess = Daemon
