"""Vendor callbacks: the config that enables them and the path they arrive on."""

from __future__ import annotations

from typing import Any

from tests.kit import Workspace, free_port

CALLBACK_TOKEN = "cb-7d1e0c9b8a6f5e4d3c2b1a09"


INTAKE_TOKEN = "intake-a-5b0f2d7c9e1a3b4c"


PREFIX = "/v1/chanjing/callback/"


def _enable(ws: Workspace, **intake: Any) -> str:
    """The listener with a callback token; polling as slow as `min_interval: 30s` makes it."""
    port = free_port()
    ws.env["CALLBACK_TOKEN"] = CALLBACK_TOKEN
    ws.config["intake"] = {
        "listen": f"127.0.0.1:{port}",
        "tokens": [INTAKE_TOKEN],
        "callback_token": "${CALLBACK_TOKEN}",
        **intake,
    }
    ws.config["polling"] = {"min_interval": "30s", "max_interval": "60s", "give_up_after": "1h"}
    ws.write_config()
    return f"http://127.0.0.1:{port}"
