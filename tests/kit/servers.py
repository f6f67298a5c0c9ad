"""The project's own servers as tests use them: the vendor simulator and the verifying
receiver on 127.0.0.1, each on its own server thread, and a log of who called the simulator
when (for several daemons on one vendor account)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from notifier.service.http_server import ServerThread
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import API_PREFIX, VendorSimulator


@dataclass
class Simulator:
    """The vendor simulator and the server thread it answers on."""

    sim: VendorSimulator
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class ReceiverServer:
    """The verifying receiver and the server thread it answers on."""

    receiver: Receiver
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


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
