"""Gateway tokens: signed, shared by every node through the key, never revoking each other,
each bound to the vendor account whose credentials (or client) got it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from notifier.gateway.tokens import TOKEN_LIFE, Credentials, GatewayTokens, Holder

KEY = b"k" * 32
SHOP = Holder("shop", "default")
ACCOUNT = Holder("account", "default")
KNOWN = frozenset({ACCOUNT, SHOP})


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_names_its_client_on_any_node_with_the_key_and_none_revokes_another() -> None:
    clock = Clock()
    one, other = GatewayTokens(KEY, clock=clock), GatewayTokens(KEY, clock=clock)
    first, expires = one.issue(SHOP)
    second, _ = one.issue(SHOP)
    assert first != second
    assert expires == int(clock.now) + TOKEN_LIFE
    assert other.holder_of(first, KNOWN) == SHOP  # another node, same key
    assert other.holder_of(second, KNOWN) == SHOP
    assert GatewayTokens(b"x" * 32, clock=clock).holder_of(first, KNOWN) is None


def test_a_token_lasts_beyond_the_sdks_24_hours_then_stops() -> None:
    clock = Clock()
    tokens = GatewayTokens(KEY, clock=clock)
    token, _ = tokens.issue(ACCOUNT)
    clock.now += 24 * 3600 + 60
    assert tokens.holder_of(token, KNOWN) == ACCOUNT
    clock.now += TOKEN_LIFE
    assert tokens.holder_of(token, KNOWN) is None


def test_a_removed_client_or_a_tampered_token_is_refused() -> None:
    tokens = GatewayTokens(KEY, clock=Clock())
    token, _ = tokens.issue(SHOP)
    assert tokens.holder_of(token, frozenset({ACCOUNT})) is None
    prefix, payload, mac = token.split(".")
    forged = GatewayTokens(b"y" * 32).issue(SHOP)[0].split(".")[1]
    for bad in (
        f"{prefix}.{forged}.{mac}",
        f"{prefix}.{payload}.{mac[:-2]}",
        f"gw2.{payload}.{mac}",
        "",
        "not-a-token",
        "gw1..",
        token + "\udc80",
    ):
        assert tokens.holder_of(bad, KNOWN) is None, bad


def test_a_token_is_bound_to_its_account_a_client_moved_to_another_loses_its_tokens() -> None:
    tokens = GatewayTokens(KEY, clock=Clock())
    beta = Holder("account", "beta")
    known = frozenset({ACCOUNT, beta, Holder("shop", "beta")})
    token, _ = tokens.issue(beta)
    assert tokens.holder_of(token, known) == beta  # the account is in the signed part
    assert tokens.holder_of(tokens.issue(ACCOUNT)[0], known) == ACCOUNT
    # shop's tokens were for the default account; shop now calls as beta: fetch anew.
    assert tokens.holder_of(tokens.issue(SHOP)[0], known) is None
    assert tokens.holder_of(token, frozenset({ACCOUNT})) is None  # beta removed


def legacy_token(key: bytes, client: str, expires: int) -> str:
    """A token as the gateway issued it before accounts: no account in it."""
    raw = json.dumps({"c": client, "e": expires, "n": "0123456789abcdef"}).encode()
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"gw1.{payload}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_a_token_from_before_accounts_is_the_default_accounts() -> None:
    clock = Clock()
    tokens = GatewayTokens(KEY, clock=clock)
    old = legacy_token(KEY, "account", int(clock.now) + 3600)
    known = frozenset({Holder("account", "alpha"), Holder("account", "beta")})
    assert tokens.holder_of(old, known, "alpha") == Holder("account", "alpha")
    assert tokens.holder_of(old, known, "beta") == Holder("account", "beta")
    assert tokens.holder_of(old, known, None) is None  # no default account: fetch anew
    assert tokens.holder_of(legacy_token(KEY, "shop", int(clock.now) + 3600), KNOWN) is None
    assert (
        tokens.holder_of(legacy_token(KEY, "shop", int(clock.now) + 3600), KNOWN, "default") == SHOP
    )
    assert (
        tokens.holder_of(legacy_token(b"x" * 32, "account", int(clock.now) + 3600), known, "alpha")
        is None
    )


def test_credentials_match_only_whole_pairs() -> None:
    creds = Credentials(
        [("account", "default", "app", "s3cret"), ("shop", "default", "shop-app", "shop-secret")]
    )
    assert creds.match("app", "s3cret") == ACCOUNT
    assert creds.match("shop-app", "shop-secret") == SHOP
    assert creds.match("app", "shop-secret") is None
    assert creds.match("shop-app", "s3cret") is None
    assert creds.match("app\udc80", "s3cret") is None  # any text compares
