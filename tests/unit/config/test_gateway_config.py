"""The ``gateway`` section and ``intake.public_url``: defaults, checks, secrets."""

from __future__ import annotations

from pathlib import Path

from tests.kit.config_files import BASE, ENDPOINTS, config_error, load_text

CLIENTS = """\
gateway:
  listen: 127.0.0.1:8787
  clients:
    - {name: shop, app_id: shop-app, secret_key: shop-secret-value}
"""


def test_the_gateway_is_off_by_default_and_its_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    assert config.gateway.listen is None
    assert config.gateway.advertised() is None
    assert (config.gateway.share, config.gateway.max_wait) == (0.5, 10.0)
    assert config.intake.callback_url() is None


def test_clients_are_secrets_and_advertise_defaults_to_listen(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + CLIENTS)
    assert config.gateway.advertised() == "http://127.0.0.1:8787"
    assert "shop-secret-value" in config.secrets()
    assert "shop-secret-value" not in repr(config)
    wildcard = load_text(tmp_path, BASE + "gateway: {listen: '0.0.0.0:8787'}\n")
    assert wildcard.gateway.advertised() == "http://127.0.0.1:8787"
    assert any("gateway.listen" in w for w in wildcard.warnings())


def test_bad_gateway_keys_are_named(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        BASE
        + """\
gateway:
  listen: nowhere
  share: 2
  max_wait: -1s
  advertise: ftp://x
  clients:
    - {name: account, app_id: a, secret_key: never-shown-secret}
  unknown: 1
""",
    )
    for key in (
        "gateway.listen",
        "gateway.share",
        "gateway.max_wait",
        "gateway.advertise",
        "gateway.clients[0].name",
        "gateway.unknown",
    ):
        assert key in message, (key, message)
    assert "never-shown-secret" not in message
    twice = config_error(
        tmp_path,
        BASE
        + """gateway:
  clients:
    - {name: shop, app_id: b, secret_key: s2}
    - {name: shop, app_id: b, secret_key: s3}
""",
    )
    assert "gateway.clients[1].name" in twice and "gateway.clients[1].app_id" in twice


def test_public_url_gives_the_callback_route(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        BASE
        + ENDPOINTS
        + """\
intake:
  callback_token: cb-token-0123456789abcdef
  public_url: https://notifier.example.com/
""",
    )
    assert config.intake.callback_url() == (
        "https://notifier.example.com/v1/chanjing/callback/cb-token-0123456789abcdef"
    )
    message = config_error(tmp_path, BASE + "intake: {public_url: 'https://x/?q=1'}\n")
    assert "intake.public_url" in message
