"""``state.url``: a PostgreSQL state beside ``state.path``, exactly one of them, ``${VAR}``
expanded, and its password treated as a secret (issue 10)."""

from __future__ import annotations

import pytest
import yaml

from notifier.config import Config, ConfigError, parse_config
from notifier.service.settings import build
from notifier.service.state_settings import state_settings
from notifier.store import describe_state

PASSWORD = "db-pass-0c5b9a7d1e"
BASE = {"chanjing": {"app_id": "app-1", "secret_key": "sk-9f2c4e1a7b3d-TOPSECRET"}}


def parse(state: dict[str, object], environ: dict[str, str] | None = None) -> Config:
    return parse_config(yaml.safe_load(yaml.safe_dump({**BASE, "state": state})), "c.yaml", environ)


def test_url_with_a_variable_is_expanded_and_its_password_is_a_secret() -> None:
    config = parse(
        {"url": "postgresql://notifier:${PGPASS}@db.internal:5433/chanjing"}, {"PGPASS": PASSWORD}
    )
    assert config.state.url == f"postgresql://notifier:{PASSWORD}@db.internal:5433/chanjing"
    assert PASSWORD in config.secrets()
    state = state_settings(config)
    assert describe_state(state) == "postgresql://notifier@db.internal:5433/chanjing"
    assert PASSWORD not in repr(state) and PASSWORD not in repr(build(config))


def test_path_and_url_together_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as raised:
        parse({"path": "/tmp/state.db", "url": "postgresql://u@h/db"})
    message = str(raised.value)
    assert "state.path" in message and "state.url" in message and "not both" in message


@pytest.mark.parametrize(
    "url",
    [f"mysql://u:{PASSWORD}@h/db", f"postgresql://u:{PASSWORD}@h", f"postgresql://u:{PASSWORD}@h/"],
)
def test_a_bad_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse({"url": url})
    message = str(raised.value)
    assert "state.url" in message and "postgresql://" in message
    assert PASSWORD not in message


def test_path_alone_stays_sqlite() -> None:
    config = parse({"path": "/tmp/state.db"})
    assert config.state.url is None
    assert describe_state(state_settings(config)) == "/tmp/state.db"
