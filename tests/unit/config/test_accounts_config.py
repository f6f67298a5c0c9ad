"""``accounts:`` (issue 22, item 1): several vendor accounts, or ``chanjing:`` as the one named
``default``; names unique, one app per account, at most one default, problems named by the
account's name, secrets of every account redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.config_files import BASE, ENDPOINTS, SECRET_KEY, config_error, load_text

TWO = """\
accounts:
  - {name: shop, app_id: app-shop, secret_key: ${SK}}
  - {name: media, app_id: app-media, secret_key: other-secret-7f3a, qps: 5, base_url: http://127.0.0.1:9}
"""


def test_the_chanjing_section_is_the_one_account_named_default(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    (account,) = config.vendor_accounts()
    assert (account.name, account.app_id, account.qps) == ("default", "app-1", 10)
    assert account.secret_key.get_secret_value() == SECRET_KEY
    assert config.default_account() == "default" and config.accounts is None


def test_several_accounts_in_order_each_with_its_own_budget(tmp_path: Path) -> None:
    config = load_text(tmp_path, TWO)
    shop, media = config.vendor_accounts()
    assert (shop.name, shop.qps, shop.base_url) == ("shop", 10, "https://open-api.chanjing.cc")
    assert (media.name, media.qps, media.base_url) == ("media", 5, "http://127.0.0.1:9")
    assert config.account("media") == media and config.account("nope") is None
    # Two accounts and none marked default: a watch must name its account.
    assert config.default_account() is None
    assert {SECRET_KEY, "other-secret-7f3a"} <= set(config.secrets())


def test_one_account_may_be_the_default(tmp_path: Path) -> None:
    text = TWO.replace("secret_key: ${SK}}", "secret_key: ${SK}, default: true}")
    assert load_text(tmp_path, text).default_account() == "shop"
    one = "accounts:\n  - {name: only, app_id: a, secret_key: ${SK}}\n"
    assert load_text(tmp_path, one).default_account() == "only"  # the only one needs no mark


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        (
            BASE + TWO,
            "accounts: give chanjing (one account) or accounts (several), not both",
        ),
        ("state: {path: x.db}\n", "chanjing: required key is missing (or accounts, for several"),
        ("accounts: []\n", "accounts: name at least one account (or use the chanjing section)"),
        (
            TWO.replace("name: media", "name: shop"),
            "accounts[1] (shop).name: duplicate account name 'shop' (already used by accounts[0])",
        ),
        (
            TWO.replace("app-media", "app-shop").replace(", base_url: http://127.0.0.1:9", ""),
            "accounts[1] (media).app_id: the same app_id as account 'shop' at the same base_url",
        ),
        (
            TWO.replace("${SK}}", "${SK}, default: true}").replace("qps: 5", "default: true"),
            "accounts: more than one account marked default: shop, media",
        ),
        (TWO.replace("qps: 5", "qps: 0"), "accounts[1] (media).qps: must be an integer from 1"),
        (TWO.replace("name: media", "name: Media!"), "accounts[1] (Media!).name: invalid account"),
        (TWO.replace("qps: 5", "colour: red"), "accounts[1] (media).colour: unknown key (allowed:"),
        (TWO.replace("name: media, ", ""), "accounts[1].name: required key is missing"),
    ],
)
def test_a_bad_account_is_named(tmp_path: Path, text: str, wanted: str) -> None:
    message = config_error(tmp_path, text)
    assert wanted in message, message


def test_warnings_name_the_account(tmp_path: Path) -> None:
    text = TWO.replace("http://127.0.0.1:9", "http://vendor.example").replace("qps: 5", "qps: 50")
    text = text.replace("app_id: app-shop,", "app_id: app-shop, qps: 20,")
    warnings = load_text(tmp_path, text).warnings()
    assert any(w.startswith("accounts[1] (media).base_url: plain http") for w in warnings)
    assert any(w.startswith("accounts[0] (shop).qps: 20 is above the vendor's") for w in warnings)
    single = load_text(tmp_path, BASE.replace("app_id: app-1", "app_id: a\n  qps: 20")).warnings()
    assert any(w.startswith("chanjing.qps: 20 is above") for w in single)  # as before


GATEWAY = """\
gateway:
  listen: 127.0.0.1:9
  clients:
    - {name: app, app_id: app-gw, secret_key: gw-secret-1, account: media}
"""


def test_gateway_clients_and_endpoints_name_configured_accounts(tmp_path: Path) -> None:
    text = (
        TWO + GATEWAY + ENDPOINTS.replace("    events: [lip_sync.failed]", "    accounts: [shop]")
    )
    config = load_text(tmp_path, text)
    assert config.gateway.clients[0].account == "media"
    assert config.endpoints[1].accounts == ["shop"] and config.endpoints[0].accounts is None


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        (
            TWO + GATEWAY.replace("account: media", "account: nope"),
            "gateway.clients[0].account: unknown account 'nope' (configured: shop, media)",
        ),
        (
            TWO + GATEWAY.replace(", account: media", ""),
            "gateway.clients[0].account: name the account (several and none marked default: "
            "shop, media)",
        ),
        (
            TWO + ENDPOINTS.replace("    events: [lip_sync.failed]", "    accounts: [shop, nope]"),
            "endpoints[1].accounts[1]: unknown account 'nope' (configured: shop, media)",
        ),
    ],
)
def test_an_unknown_or_missing_account_reference_is_named(
    tmp_path: Path, text: str, wanted: str
) -> None:
    message = config_error(tmp_path, text)
    assert wanted in message, message


def test_one_account_needs_no_reference(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + GATEWAY.replace(", account: media", ""))
    assert config.gateway.clients[0].account is None  # the default account's client
