"""How `run` ends before or as it starts (issue 20, item 8): a taken ``metrics.listen``
stops the start as a taken ``intake.listen`` does, Ctrl-C while start-up waits exits 130
without a traceback, and ``/healthz`` says so once the vendor is failing."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.kit import free_port


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A TCP port that accepts connections and never says a word (a database that hangs);
    the event is set at the first connection."""
    accepted = threading.Event()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            accepted.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    sock.close()
    for conn in held:
        conn.close()


def test_a_taken_metrics_listen_stops_the_start(workspace: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace.config["metrics"] = {"listen": f"127.0.0.1:{port}"}
        workspace.write_config()
        daemon = workspace.start()
        assert daemon.popen.wait(60) == 1
    daemon.stop()
    (line,) = [r for r in daemon.records() if r.get("event") == "cannot start: metrics.listen"]
    assert line["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert not any(r.get("event") == "ready" for r in daemon.records())


def test_ctrl_c_while_the_state_does_not_answer_exits_130_without_a_traceback(
    workspace: Any, silent_server: tuple[int, threading.Event]
) -> None:
    port, accepted = silent_server
    workspace.config["state"] = {"url": f"postgresql://notifier@127.0.0.1:{port}/notifier"}
    workspace.write_config()
    daemon = workspace.start()
    assert accepted.wait(60), daemon.output  # start-up is waiting for the database
    daemon.popen.send_signal(signal.SIGINT)
    assert daemon.popen.wait(30) == 130, daemon.output
    daemon.stop()
    assert "Traceback" not in daemon.output
    assert "cannot open state database" not in daemon.output  # interrupted, not timed out


def test_healthz_fails_once_the_vendor_is_failing_for_alerts_vendor_failing_for(
    workspace: Any,
) -> None:
    metrics = free_port()
    workspace.config["chanjing"]["base_url"] = f"http://127.0.0.1:{free_port()}"  # nobody there
    workspace.config["alerts"] = {"vendor_failing_for": "1s"}
    workspace.config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    workspace.write_config()
    workspace.write_watch(["unreachable1"])
    daemon = workspace.start()
    daemon.wait_ready()
    url = f"http://127.0.0.1:{metrics}/healthz"
    deadline = time.monotonic() + 60
    answer = httpx.get(url, timeout=10)
    while answer.status_code == 200 and time.monotonic() < deadline:
        assert answer.text.startswith("ok; ")
        time.sleep(0.1)  # polls of the unreachable vendor fail meanwhile
        answer = httpx.get(url, timeout=10)
    assert answer.status_code == 503, answer.text
    assert answer.text.startswith("vendor failing since ")
    assert "alerts.vendor_failing_for 1s" in answer.text
    assert daemon.stop() == 0
