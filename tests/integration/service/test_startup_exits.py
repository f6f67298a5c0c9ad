"""How `run` ends before or as it starts (issue 20, item 8): a taken ``metrics.listen``
stops the start as a taken ``intake.listen`` does."""

from __future__ import annotations

import socket
from typing import Any


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
