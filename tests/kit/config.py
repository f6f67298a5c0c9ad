"""Daemon configs and environments, for the tests' workspaces and the benchmarks' runs: the
vendor section, webhook endpoints, an environment cleared of what would steer a daemon
elsewhere, and the config file. Secrets are ``${VAR}`` references filled from the
environment, so none is written into a file."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

#: The test simulator's account (the simulator fixture, the daemon's config, vendor clients).
APP_ID = "test-app"
SECRET_KEY = "sk-test-9f2c4e1a7b3d5e6f"
OPS_SECRET = "whsec_" + base64.b64encode(b"ops-secret-0123456789abcdef!").decode()
ANALYTICS_SECRET = "whsec_" + base64.b64encode(b"analytics-secret-0123456789xy").decode()
OLD_OPS_SECRET = "whsec_" + base64.b64encode(b"old-ops-secret-0123456789ab").decode()
SLACK_PATH = "/services/T000/B000/slacksecretpath123"


def ref(var: str) -> str:
    """``${VAR}``: the config's reference to an environment variable."""
    return "${" + var + "}"


def chanjing_section(base_url: str, app_id: str, secret_key: str, qps: int) -> dict[str, Any]:
    """The ``chanjing:`` section for a local simulator."""
    return {"base_url": base_url, "app_id": app_id, "secret_key": secret_key, "qps": qps}


def webhook_endpoint(
    name: str, url: str, secret: str | Sequence[str], events: Sequence[str] | None = None
) -> dict[str, Any]:
    """One ``endpoints:`` entry of type webhook (``events``: its filter, if any)."""
    entry: dict[str, Any] = {
        "name": name,
        "type": "webhook",
        "url": url,
        "secret": secret if isinstance(secret, str) else list(secret),
    }
    if events is not None:
        entry["events"] = list(events)
    return entry


def clean_env(drop: Sequence[str] = ("CHANJING_NOTIFIER",), **extra: str) -> dict[str, str]:
    """This process's environment without the variables starting with ``drop`` (the
    daemon's own, a systemd socket), unbuffered, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_config(path: Path, config: Mapping[str, Any], mode: int | None = None) -> None:
    """The config as YAML, keys in the order given (``mode``: the file's permissions)."""
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    if mode is not None:
        path.chmod(mode)


def base_config(tmp_path: Path, sim_url: str, receiver_url: str, **sections: Any) -> dict[str, Any]:
    """A test's config dict on test-friendly timings; ``sections`` replace top-level keys."""
    config: dict[str, Any] = {
        "chanjing": chanjing_section(sim_url, APP_ID, ref("TEST_SECRET_KEY"), 10),
        "state": {"path": str(tmp_path / "state.db")},
        "watch": {"file": str(tmp_path / "watch.yaml")},
        "polling": {"min_interval": "300ms", "max_interval": "2s", "give_up_after": "1h"},
        "delivery": {"timeout": "3s", "retry_schedule": ["200ms", "400ms", "800ms", "1s", "1s"]},
        "endpoints": [
            webhook_endpoint(
                "ops", f"{receiver_url}/ops", [ref("OPS_SECRET"), ref("OLD_OPS_SECRET")]
            ),
            webhook_endpoint(
                "analytics",
                f"{receiver_url}/analytics",
                ref("ANALYTICS_SECRET"),
                ["lip_sync.succeeded"],
            ),
            {
                "name": "team",
                "type": "slack",
                "url": ref("SLACK_URL"),
                "events": ["lip_sync.failed"],
            },
        ],
    }
    config.update(sections)
    return config


def daemon_env(receiver_url: str) -> dict[str, str]:
    """The environment a test's daemon and CLI run with: the secrets ``base_config`` names."""
    return clean_env(
        TEST_SECRET_KEY=SECRET_KEY,
        OPS_SECRET=OPS_SECRET,
        OLD_OPS_SECRET=OLD_OPS_SECRET,
        ANALYTICS_SECRET=ANALYTICS_SECRET,
        SLACK_URL=f"{receiver_url}{SLACK_PATH}",
    )


def secrets_for(receiver_url: str) -> list[str]:
    """Every secret a test's daemon knows: none may appear in its output."""
    return [
        SECRET_KEY,
        OPS_SECRET,
        OLD_OPS_SECRET,
        ANALYTICS_SECRET,
        SLACK_PATH.strip("/"),
        f"{receiver_url}{SLACK_PATH}",
    ]
