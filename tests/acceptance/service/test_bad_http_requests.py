"""Issue 18: a NUL byte in a header got aiohttp's 400 and an ERROR traceback in the daemon's
log. It is the client's mistake: one warning line, no traceback."""

from __future__ import annotations

import socket

from tests.kit import Workspace, free_port


def test_a_request_that_cannot_be_parsed_gets_400_and_one_warning_line(
    workspace: Workspace,
) -> None:
    port = free_port()
    workspace.config["intake"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    daemon = workspace.start()
    daemon.wait_ready()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"400", answer[:80]
    assert daemon.wait_for_log(lambda r: r.get("event", "").startswith("bad HTTP request"), 20)
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output
    assert not [r for r in daemon.records() if r.get("level") == "error"]
