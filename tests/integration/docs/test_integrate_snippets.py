"""The signature checks docs/integrate.md shows, run as written (Python; Node with
`node:crypto`; Node with the `standardwebhooks` npm package when it is installed) against
headers made by the daemon's own webhook sender, with two secrets as during a rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.delivery.senders.webhook import WebhookSender
from notifier.models import Event

PAGE = Path(__file__).resolve().parents[3] / "docs" / "integrate.md"
OLD = "whsec_" + base64.b64encode(b"integrate-old-secret-0123456789").decode()
NEW = "whsec_" + base64.b64encode(b"integrate-new-secret-0123456789").decode()
BODY = json.dumps(
    {
        "type": "lip_sync.succeeded",
        "timestamp": "2026-12-07T02:36:03Z",
        "data": {"id": "job-i1", "status": 20, "labels": {"customer": "acme"}},
    }
).encode()


def _snippet(language: str, marker: str) -> str:
    """The page's code block in ``language`` that holds ``marker``, set to the new secret."""
    blocks = re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if marker in b]
    assert block.count('"whsec_…"') == 1
    return block.replace('"whsec_…"', json.dumps(NEW))


def _headers(body: bytes = BODY) -> dict[str, str]:
    async def made() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            sender = WebhookSender(client, "http://127.0.0.1:9/", [OLD, NEW], timeout=5)
            event = Event("evt_integrate1", "job-i1", "lip_sync.succeeded", time.time(), body)
            return sender.headers_for(event, time.time())

    return asyncio.run(made())


def test_the_python_snippet_accepts_a_signed_callback_and_refuses_a_forged_one() -> None:
    seen: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "already_seen": lambda webhook_id: webhook_id in seen,
        "remember": seen.__setitem__,
    }
    exec(_snippet("python", "standardwebhooks"), namespace)  # the page's snippet, as written
    handle = namespace["handle"]
    headers = _headers()
    assert len(headers["webhook-signature"].split(" ")) == 2  # one per secret
    assert handle(BODY, headers) == 204
    assert seen == {"evt_integrate1": json.loads(BODY)}
    assert handle(BODY, headers) == 204 and len(seen) == 1  # a retry is not taken twice
    assert handle(BODY.replace(b"acme", b"evil"), headers) == 400
    stale = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
    assert handle(BODY, stale) == 400


NODE_HARNESS = """
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ body, headers }) =>
    verify(Buffer.from(body, "utf8"), headers));
  console.log(JSON.stringify(results));
});
"""


def _run_node(script: str, env: dict[str, str] | None = None) -> list[Any]:
    headers = _headers()
    cases = [
        {"body": BODY.decode(), "headers": headers},
        {"body": BODY.decode().replace("acme", "evil"), "headers": headers},
        {"body": BODY.decode(), "headers": dict(headers, **{"webhook-signature": "v1,AAAA"})},
        {
            "body": BODY.decode(),
            "headers": dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)}),
        },
    ]
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "-e", script + NODE_HARNESS],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    verdicts: list[Any] = json.loads(result.stdout)
    return verdicts


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@needs_node
def test_the_node_crypto_snippet_accepts_a_signed_callback_and_refuses_the_rest() -> None:
    assert _run_node(_snippet("js", "node:crypto")) == [json.loads(BODY), None, None, None]


def _npm_package_env() -> dict[str, str] | None:
    """The environment under which ``require("standardwebhooks")`` works, or None."""
    node = shutil.which("node")
    if node is None:
        return None
    env = dict(os.environ)
    probe = subprocess.run(
        [node, "-e", 'require.resolve("standardwebhooks")'],
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    return env if probe.returncode == 0 else None


@pytest.mark.skipif(
    _npm_package_env() is None,
    reason="the standardwebhooks npm package is not installed (npm install standardwebhooks, "
    "or NODE_PATH pointing at a node_modules that has it)",
)
def test_the_node_package_snippet_accepts_a_signed_callback_and_refuses_the_rest() -> None:
    verdicts = _run_node(_snippet("js", 'require("standardwebhooks")'), _npm_package_env())
    assert verdicts == [json.loads(BODY), None, None, None]
