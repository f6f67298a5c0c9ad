"""The unit lets the daemon run its listeners (intake.listen, metrics.listen) as it is: the
address families, the system calls and the network settings a TCP listener needs."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

import pytest

from tests.kit.systemd import UNIT, parse_unit

#: What aiohttp's listener calls: socket, bind, listen, accept, plus the options it sets.
LISTENER_CALLS = {"socket", "bind", "listen", "accept4", "setsockopt", "getsockname"}


@cache
def _expand(group: str) -> frozenset[str]:
    """The system calls of a systemd filter group, nested groups included."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    out = subprocess.run(
        [exe, "syscall-filter", group], capture_output=True, text=True, check=True
    ).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= _expand(item) if item.startswith("@") else {item}
    return frozenset(calls)


def _allowed_calls(filters: list[str]) -> set[str]:
    allowed: set[str] = set()
    for value in filters:
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= _expand(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


def test_the_unit_allows_a_tcp_listener() -> None:
    service = parse_unit(UNIT.read_text(encoding="utf-8"))["Service"]
    families = " ".join(service.get("RestrictAddressFamilies", [])).split()
    assert {"AF_INET", "AF_INET6"} <= set(families)
    assert service.get("PrivateNetwork", ["no"])[-1] == "no"
    assert "SocketBindDeny" not in service
    assert "IPAddressDeny" not in service
    missing = LISTENER_CALLS - _allowed_calls(service["SystemCallFilter"])
    assert missing == set()


def test_the_filter_reading_would_notice_a_denied_listener() -> None:
    assert "bind" not in _allowed_calls(["@system-service", "~@network-io"])
    assert "bind" in _allowed_calls(["@system-service", "~@privileged @resources"])
