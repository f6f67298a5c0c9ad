"""docs/try-it-locally.md, walked for real: `simulate`, `receive` and `run` as three child
processes on the shipped examples/local.yaml (its ports moved to free ones), a job created
through the simulator's token and create paths as an application would, registered over the
intake API, and its webhook (verified) and Slack post arriving at the receiver."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.kit import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "try-it-locally.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "examples" / "local.yaml").read_text(encoding="utf-8")
PORTS = {"8700": "simulate", "8800": "receive", "8088": "intake", "9464": "metrics"}
DEADLINE = 90.0  # the job itself takes 13 s; the rest is a loaded machine's slack


class Child:
    """`python -m notifier ARGS`, its stdout and stderr lines read as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notifier", *args],
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[str] = []
        #: Lines read while waiting for another: the Slack post and the webhook may come in
        #: either order, so a wait looks at these first.
        self._unclaimed: list[tuple[str, str]] = []
        for name in ("stdout", "stderr"):
            stream = getattr(self.proc, name)
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put((name, line))

    def wait_for(self, found: Callable[[str, str], bool], deadline: float) -> str:
        """The first line not yet claimed that ``found`` accepts; fails at ``deadline``."""
        for n, (name, line) in enumerate(self._unclaimed):
            if found(name, line):
                del self._unclaimed[n]
                return line
        while True:
            left = deadline - time.monotonic()
            try:
                name, line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"not seen in time; output so far: {self.seen}") from None
            self.seen.append(line)
            if found(name, line):
                return line
            self._unclaimed.append((name, line))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _webhook_payload(name: str, line: str) -> bool:
    """The receiver's line with the webhook's payload (the Slack post has one too)."""
    if name != "stdout" or not line.startswith("  {"):
        return False
    return bool(json.loads(line).get("type") == "lip_sync.succeeded")


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in reversed(started):
        child.stop()


def test_the_local_walkthrough_delivers_a_job_created_as_an_application_would(
    tmp_path: Path, children: list[Child]
) -> None:
    config = yaml.safe_load(EXAMPLE)
    secret = config["endpoints"][0]["secret"]
    # The page runs exactly what this test runs (on the example's own ports).
    for command in (
        "chanjing-notifier simulate\n",
        f"chanjing-notifier receive --secret {secret} --slack-path /slack\n",
        "chanjing-notifier -c examples/local.yaml check --online\n",
        "chanjing-notifier -c examples/local.yaml run\n",
        "http://127.0.0.1:8700/open/v1/access_token",
        """-d '{"app_id": "demo-app", "secret_key": "demo-secret"}'""",
        'http://127.0.0.1:8700/open/v1/video_lip_sync/create -H "access_token: $TOKEN"',
        "http://127.0.0.1:8088/v1/chanjing/callback/" + config["intake"]["callback_token"],
        "http://127.0.0.1:8088/v1/watches -H 'Authorization: Bearer "
        + config["intake"]["tokens"][0],
        "http://127.0.0.1:8700/_sim/jobs",
    ):
        assert command in PAGE, command
    ports = {port: str(free_port()) for port in PORTS}
    text = EXAMPLE
    for port, moved in ports.items():
        assert text.count(f":{port}") >= 1, port
        text = text.replace(f":{port}", f":{moved}")
    path = tmp_path / "local.yaml"
    path.write_text(text)
    sim = f"http://127.0.0.1:{ports['8700']}"
    intake = f"http://127.0.0.1:{ports['8088']}"
    deadline = time.monotonic() + DEADLINE

    simulator = Child("simulate", "--port", ports["8700"])
    receiver = Child(
        "receive", "--port", ports["8800"], "--secret", secret, "--slack-path", "/slack"
    )
    children += [simulator, receiver]
    simulator.wait_for(lambda _name, line: "http://127.0.0.1" in line, deadline)
    receiver.wait_for(lambda _name, line: "receiver listening" in line, deadline)

    check = subprocess.run(
        [sys.executable, "-m", "notifier", "-c", str(path), "check", "--online"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "online: OK" in check.stdout

    daemon = Child("-c", str(path), "run")
    children.append(daemon)
    daemon.wait_for(lambda name, line: name == "stderr" and '"event": "ready"' in line, deadline)

    # The application's two calls, then its registration of the new id.
    token = httpx.post(
        f"{sim}/open/v1/access_token", json={"app_id": "demo-app", "secret_key": "demo-secret"}
    ).json()["data"]["access_token"]
    created = httpx.post(
        f"{sim}/open/v1/video_lip_sync/create",
        headers={"access_token": token},
        json={"callback": f"{intake}/v1/chanjing/callback/{config['intake']['callback_token']}"},
    ).json()
    assert created["code"] == 0, created
    job = created["data"]
    registered = httpx.post(
        f"{intake}/v1/watches",
        headers={"Authorization": f"Bearer {config['intake']['tokens'][0]}"},
        json={"ids": [job], "labels": {"customer": "acme"}},
    )
    assert registered.status_code == 202 and registered.json()["new"] == 1

    webhook = receiver.wait_for(
        lambda name, line: name == "stdout" and "/hooks/chanjing" in line, deadline
    )
    assert re.search(rf"lip_sync\.succeeded  job {job}  id evt_\w+  verified$", webhook.strip())
    payload = json.loads(receiver.wait_for(_webhook_payload, deadline))
    assert payload["data"]["labels"] == {"customer": "acme"}
    slack = receiver.wait_for(lambda name, line: name == "stdout" and "/slack" in line, deadline)
    assert "slack message" in slack and "not verified" in slack

    assert [child.stop() for child in (daemon, receiver, simulator)] == [0, 0, 0]
