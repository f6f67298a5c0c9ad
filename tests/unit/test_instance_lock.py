"""The second-daemon refusal (issue 17): its advice must not lead to two daemons on one
vendor account, which revoke each other's token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notifier.service.instance_lock import AlreadyRunning, InstanceLock


def test_a_second_daemon_is_told_to_share_the_state_not_to_take_its_own(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with InstanceLock(state), pytest.raises(AlreadyRunning) as refused:
        InstanceLock(state).acquire()  # flock: another open file, refused like a process
    message = str(refused.value)
    assert refused.value.holder == os.getpid()
    assert f"pid {os.getpid()}" in message and "stop it first" in message
    assert "state.url" in message and "revoke each other's vendor token" in message
    assert "own state.path" not in message
