"""Issue 22, item 4: ``intake.tokens`` entries may be ``{token, accounts}``, a token for those
accounts only; the names are checked against the configured accounts (an unknown one named
by its place, as every other account reference), the token still joins the redactor and is
never echoed, and a bare token is every account's as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import Config, ConfigError, load_config
from tests.kit.config_files import ENV, write

TOKEN = "intake-7c1d2e3f4a5b6c7d8e9f"
SHOP_TOKEN = "intake-shop-0a1b2c3d4e5f6a7b"
ACCOUNTS = """\
accounts:
  - {name: shop, app_id: app-shop, secret_key: "${SK}"}
  - {name: media, app_id: app-media, secret_key: "${SK}"}
"""


def _load(tmp_path: Path, intake: str) -> Config:
    env = {**ENV, "INTAKE_TOKEN": TOKEN, "SHOP_TOKEN": SHOP_TOKEN}
    return load_config(write(tmp_path, ACCOUNTS + "intake:\n  tokens:\n" + intake), env)


def test_a_token_may_be_limited_to_some_accounts(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "    - ${INTAKE_TOKEN}\n    - {token: '${SHOP_TOKEN}', accounts: [shop]}\n",
    )
    assert config.intake.token_grants() == [(TOKEN, None), (SHOP_TOKEN, ("shop",))]
    assert config.intake.token_values() == [TOKEN, SHOP_TOKEN]
    assert SHOP_TOKEN in config.secrets()


@pytest.mark.parametrize(
    ("intake", "expected"),
    [
        (
            "    - {token: '${SHOP_TOKEN}', accounts: [shop, nope]}\n",
            "intake.tokens[0].accounts[1]: unknown account 'nope' (configured: shop, media)",
        ),
        (
            "    - ${INTAKE_TOKEN}\n    - {token: '${SHOP_TOKEN}', accounts: [Shop]}\n",
            "intake.tokens[1].accounts[0]: invalid account name 'Shop'",
        ),
        (
            "    - {token: '${SHOP_TOKEN}', accounts: []}\n",
            "intake.tokens[0].accounts: list at least one account (leave accounts out for "
            "every account)",
        ),
        ("    - {accounts: [shop]}\n", "intake.tokens[0].token: required key is missing"),
        ("    - {token: '${SHOP_TOKEN}', acounts: [shop]}\n", "intake.tokens[0].acounts: unknown"),
        ("    - 12\n", "intake.tokens[0]: must be a token or a mapping with token and accounts"),
        ("    - {token: short, accounts: [shop]}\n", "intake.tokens[0].token: must be 16-256"),
    ],
)
def test_problems_name_the_token_by_its_place(tmp_path: Path, intake: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, intake)
    message = str(info.value)
    assert expected in message
    assert SHOP_TOKEN not in message and TOKEN not in message
