"""A result write whose COMMIT went through but whose answer was lost is applied once.

The dispatcher and a real PostgresStore talk to the test PostgreSQL through a TCP proxy that,
when armed, forwards the result write (one autocommit statement) to the server, lets the
server finish it (its ReadyForQuery: committed), and cuts the connection before any of the
answer reaches the client. The dispatcher holds the result and writes it again on a new
connection: that retry must see its own earlier write (attempts +1, one history row) and
report what it was, a final "dead" included (the delivery.dead operational event).
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from structlog.testing import capture_logs

from notifier.delivery.operational import AlertSettings, OperationalEvents, Thresholds
from notifier.delivery.senders import WebhookSender
from notifier.models import WatchSpec
from notifier.store import Store
from tests.kit import OPS_SECRET, FakeClock, ReceiverServer, StoreFactory
from tests.kit.delivery import attempts_done, finished, make_dispatcher

#: In the result write's SQL, on every version of it (and in no other statement the
#: dispatcher sends to PostgreSQL).
RESULT_WRITE = b"INSERT INTO delivery_attempts"
READY_FOR_QUERY = ord("Z")


class CutAfterCommit:
    """A TCP proxy to PostgreSQL. Armed with a marker, it forwards the first client message
    containing it, reads the server's answer up to its ReadyForQuery (the statement is
    committed then), and closes both sides without passing any of the answer on."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        self._url = parts
        self._target = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._sockets: list[socket.socket] = []
        #: Set once a connection was cut after the server's answer.
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The database's URL through the proxy."""
        netloc = self._url.netloc.rpartition("@")
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(self._url._replace(netloc=f"{netloc[0]}{netloc[1]}{host}"))

    def arm(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _take(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is not None and self._marker in data:
                self._marker = None
                return True
            return False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [])
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server:
                        client.sendall(data)
                        continue
                    server.sendall(data)
                    if self._take(data):
                        self._swallow_answer(server)
                        self.cut.set()
                        return
        except (OSError, ValueError):  # closed under us (the test is over)
            return
        finally:
            for sock in (client, server):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    @staticmethod
    def _swallow_answer(server: socket.socket) -> None:
        """Read the server's messages (type byte, length) until ReadyForQuery."""
        buffer = b""
        while True:
            data = server.recv(65536)
            if not data:
                return
            buffer += data
            while len(buffer) >= 5:
                length = int.from_bytes(buffer[1:5], "big")
                if len(buffer) < 1 + length:
                    break
                if buffer[0] == READY_FOR_QUERY:
                    return
                buffer = buffer[1 + length :]


@contextmanager
def cut_proxy(pg_url: str) -> Iterator[CutAfterCommit]:
    proxy = CutAfterCommit(pg_url)
    try:
        yield proxy
    finally:
        proxy.close()


@asynccontextmanager
async def webhook_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


#: The receiver's answer → what the attempt comes to with a schedule of one long retry.
OUTCOMES = {
    "delivered": (200, "delivered"),
    "failed": (503, "pending"),
    "dead": (410, "dead"),  # permanent: the final write
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
async def test_a_result_write_retried_after_its_commit_is_applied_once(
    pg_url: str, receiver: ReceiverServer, outcome: str
) -> None:
    status, state = OUTCOMES[outcome]
    rec = receiver.receiver
    rec.script("/ops", [status])
    clock = FakeClock()
    reported: list[tuple[str, str, int]] = []
    with cut_proxy(pg_url) as proxy, Store(proxy.url, clock=clock) as store:
        with Store(pg_url, clock=clock) as look:
            detail, event = finished("job-1", clock)
            look.add_watches([WatchSpec("job-1")], "queue")
            assert look.record_terminal(detail, event, ["ops"])
        ops = OperationalEvents(
            store, AlertSettings((("watcher", ("delivery.dead",), None),), Thresholds())
        )

        def reporter(endpoint: str, ev: Any, what: str, error: str | None, n: int) -> None:
            reported.append((endpoint, what, n))
            ops.on_result(endpoint, ev, what, error, n)

        async with webhook_client() as client:
            sender = WebhookSender(client, f"{receiver.url}/ops", [OPS_SECRET], 3.0)
            dispatcher = make_dispatcher(
                store,
                {"ops": (sender, 1)},
                [60.0],
                clock=clock,
                reporter=reporter,
                write_retry=(0.05, 0.2),
            )
            proxy.arm(RESULT_WRITE)
            with capture_logs() as logs:
                await dispatcher.tick()
                await attempts_done(timeout=30)
            assert proxy.cut.is_set()
            # The write really failed once and was written again.
            events = [e["event"] for e in logs]
            assert any(e.startswith("cannot record delivery results") for e in events), events
            assert "delivery results recorded again" in events
            await dispatcher.drain(1.0)

    assert len(rec.all("/ops")) == 1
    with Store(pg_url, clock=clock) as look:
        (row,) = [r for r in look.list_deliveries() if r["endpoint"] == "ops"]
        assert (row["state"], row["attempts"]) == (state, 1)
        history = look.event_history(event.event_id)
        assert history is not None
        (ops_delivery,) = [d for d in history["deliveries"] if d["endpoint"] == "ops"]
        assert [a["status"] for a in ops_delivery["history"]] == [status]
        types = [e["type"] for e in look.list_events()]
    assert reported == [("ops", state if state != "pending" else "failed", 1)]
    assert ("delivery.dead" in types) == (outcome == "dead"), types


def due_claimed(store: Store, clock: FakeClock) -> Any:
    detail, event = finished("job-1", clock)
    store.add_watches([WatchSpec("job-1")], "queue")
    assert store.record_terminal(detail, event, ["ops"])
    (due,) = store.claim_due_deliveries("ops", "node-a", clock.now, 1, 60.0)
    return due


@pytest.mark.parametrize("final", [True, False])
def test_a_result_written_twice_under_one_claim_counts_once(
    make_store: StoreFactory, final: bool
) -> None:
    """Both backends: the second write of one claim's result (what a retry after a lost
    answer does) returns what the first did and changes nothing."""
    clock = FakeClock()
    store = make_store(clock=clock)
    due = due_claimed(store, clock)
    args: dict[str, Any] = {"generation": due.generation, "started": clock.now, "claim": due.claim}
    retry_at = None if final else clock.now + 60
    for _ in range(2):
        assert store.delivery_failed(due.id, 503, "HTTP 503", retry_at, **args)
    (row,) = store.list_deliveries()
    assert (row["state"], row["attempts"]) == ("dead" if final else "pending", 1)
    history = store.event_history(due.event.event_id)
    assert history is not None
    assert len(history["deliveries"][0]["history"]) == 1
    # The claim is consumed: releasing it finds nothing to release.
    assert store.release_claims([(due.id, due.claim)]) == 0
