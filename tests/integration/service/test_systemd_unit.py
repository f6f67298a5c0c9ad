"""The systemd unit: systemd accepts it, its sandbox scores well, and it runs the daemon the way
the daemon expects (sd_notify, SIGHUP reload, -c before the subcommand, directories that match
the example config).

The systemd-analyze checks work offline (systemd need not be PID 1) and take milliseconds; they
are skipped only where systemd-analyze is not installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from notifier.cli import _build_parser
from tests.kit.systemd import ROOT, UNIT, parse_unit

ENV_EXAMPLE = ROOT / "systemd" / "chanjing-notifier.env.example"
CONFIG_EXAMPLE = ROOT / "config.example.yaml"
UNIT_NAME = UNIT.name
INSTALLED_EXE = "/opt/chanjing-notifier/bin/chanjing-notifier"
MAX_EXPOSURE = 1.5
DAEMON_STOP_BUDGET = 10.0  # seconds the daemon takes at most to exit after SIGTERM


def seconds(span: str) -> float:
    """A systemd time span such as 15s, 1min 30s, 500ms (the subset units use)."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|)", span)
    assert parts and "".join(a + b for a, b in parts) == span.replace(" ", ""), span
    return sum(float(amount) * units[unit] for amount, unit in parts)


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times: {values}"
    return values[0]


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    return exe


def analyze(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, "--no-pager", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "SYSTEMD_COLORS": "0"},
    )


def daemon_entry_point() -> str:
    """The daemon as installed in this test environment, written for an ExecStart= line."""
    script = Path(sys.executable).with_name("chanjing-notifier")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "notifier"]
    return " ".join(f'"{word}"' if re.search(r"\s", word) else word for word in command)


def host_runnable(text: str) -> str:
    """The unit with its commands pointed at executables that exist here (verify checks them)."""
    assert INSTALLED_EXE in text
    text = text.replace(INSTALLED_EXE, daemon_entry_point())
    kill = shutil.which("kill") or "/bin/kill"
    if not Path("/bin/kill").exists():
        text = text.replace("ExecReload=/bin/kill ", f"ExecReload={kill} ")
    return text


def complaints_about_unit(stderr: str, unit_path: Path) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if UNIT_NAME in line or str(unit_path) in line or str(unit_path.parent) in line
    ]


# --- what the daemon needs from its unit ---------------------------------------------------------


def test_notify_type_watchdog_and_timeouts(unit: dict[str, dict[str, list[str]]]) -> None:
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    watchdog = seconds(one(unit, "Service", "WatchdogSec"))
    assert 10 <= watchdog <= 120, "the daemon pings every WatchdogSec/2 from its event loop"
    stop = seconds(one(unit, "Service", "TimeoutStopSec"))
    assert stop > DAEMON_STOP_BUDGET, "systemd must not SIGKILL a daemon that is still stopping"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert seconds(one(unit, "Service", "RestartSec")) >= 1
    assert "2" in one(unit, "Service", "RestartPreventExitStatus").split(), "bad config: exit 2"


def test_reload_sends_sighup_to_the_main_process(unit: dict[str, dict[str, list[str]]]) -> None:
    argv = shlex.split(one(unit, "Service", "ExecReload"))
    assert Path(argv[0]).name == "kill"
    assert argv[1:] == ["-HUP", "$MAINPID"]


def test_exec_start_puts_config_before_the_subcommand(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == INSTALLED_EXE
    assert argv[-1] == "run"
    option = "--config" if "--config" in argv else "-c"
    assert option in argv, argv
    assert argv.index(option) < argv.index("run"), "-c/--config goes before the subcommand"
    assert argv[argv.index(option) + 1] == "/etc/chanjing-notifier/config.yaml"
    # The real command line parser reads it the same way.
    args = _build_parser().parse_args(argv[1:])
    assert (args.command, args.config) == ("run", "/etc/chanjing-notifier/config.yaml")


def test_identity_directories_and_secrets(unit: dict[str, dict[str, list[str]]]) -> None:
    service = "Service"
    assert one(unit, service, "DynamicUser") == "yes"
    assert one(unit, service, "StateDirectory") == "chanjing-notifier"
    assert one(unit, service, "StateDirectoryMode") == "0700"
    assert one(unit, service, "ConfigurationDirectory") == "chanjing-notifier"
    assert one(unit, service, "UMask") == "0077"
    assert one(unit, service, "EnvironmentFile") == "-/etc/chanjing-notifier/secrets.env"
    assert "PYTHONUNBUFFERED=1" in unit[service]["Environment"]
    # AF_UNIX carries sd_notify datagrams ($NOTIFY_SOCKET); AF_INET* the vendor and endpoints.
    families = one(unit, service, "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert "IPAddressDeny" not in unit[service], "webhook endpoints may be anywhere"
    assert one(unit, service, "CapabilityBoundingSet") == ""
    assert one(unit, "Unit", "After") == "network-online.target"
    assert one(unit, "Unit", "Wants") == "network-online.target"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_example_config_fits_the_unit_directories_and_secrets_file() -> None:
    config = yaml.safe_load(CONFIG_EXAMPLE.read_text(encoding="utf-8"))
    # StateDirectory= makes /var/lib/chanjing-notifier the only writable place.
    assert Path(config["state"]["path"]).parent == Path("/var/lib/chanjing-notifier")
    assert Path(config["watch"]["file"]).parent == Path("/etc/chanjing-notifier")
    needed = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", json.dumps(config)))
    provided = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert needed, "config.example.yaml takes its secrets from ${VAR}"
    assert needed <= provided, f"missing from {ENV_EXAMPLE.name}: {sorted(needed - provided)}"


# --- systemd's own judgement -------------------------------------------------------------------


def test_systemd_analyze_verify_accepts_the_unit(systemd_analyze: str, tmp_path: Path) -> None:
    copy = tmp_path / UNIT_NAME
    copy.write_text(host_runnable(UNIT.read_text(encoding="utf-8")), encoding="utf-8")
    result = analyze(systemd_analyze, "verify", str(copy))
    complaints = complaints_about_unit(result.stderr, copy)
    assert result.returncode == 0 and not complaints, result.stderr + result.stdout


def test_verify_check_is_not_vacuous(systemd_analyze: str, tmp_path: Path) -> None:
    """A misspelt key and a bad value must show up as complaints: the check above can fail."""
    text = host_runnable(UNIT.read_text(encoding="utf-8"))
    text = text.replace("ProtectSystem=strict", "ProtectSytem=strict")
    text = text.replace("WatchdogSec=", "WatchdogSec=soon #")
    copy = tmp_path / UNIT_NAME
    copy.write_text(text, encoding="utf-8")
    complaints = complaints_about_unit(analyze(systemd_analyze, "verify", str(copy)).stderr, copy)
    assert any("ProtectSytem" in line for line in complaints), complaints
    assert any("WatchdogSec" in line or "sec value" in line for line in complaints), complaints


def test_sandbox_exposure_is_low(systemd_analyze: str) -> None:
    result = analyze(systemd_analyze, "security", "--offline=true", str(UNIT))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    assert float(match.group(1)) <= MAX_EXPOSURE, output
    assert result.returncode == 0, output


def test_descriptors_and_memory_are_bounded(unit: dict[str, dict[str, list[str]]]) -> None:
    """Issue 18: a flood of idle connections or a decompression bomb must not take the host's
    descriptors or memory: the unit bounds both (each listener bounds its connections)."""
    service = unit["Service"]
    assert int(service["LimitNOFILE"][-1]) >= 4 * 256
    assert service["MemoryMax"][-1].endswith(("M", "G"))
