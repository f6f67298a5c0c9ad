"""Gateway tokens: signed, shared by every node through the key, never revoking each other."""

from __future__ import annotations

from notifier.gateway.tokens import TOKEN_LIFE, Credentials, GatewayTokens

KEY = b"k" * 32
KNOWN = frozenset({"account", "shop"})


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_names_its_client_on_any_node_with_the_key_and_none_revokes_another() -> None:
    clock = Clock()
    one, other = GatewayTokens(KEY, clock=clock), GatewayTokens(KEY, clock=clock)
    first, expires = one.issue("shop")
    second, _ = one.issue("shop")
    assert first != second
    assert expires == int(clock.now) + TOKEN_LIFE
    assert other.client_of(first, KNOWN) == "shop"  # another node, same key
    assert other.client_of(second, KNOWN) == "shop"
    assert GatewayTokens(b"x" * 32, clock=clock).client_of(first, KNOWN) is None


def test_a_token_lasts_beyond_the_sdks_24_hours_then_stops() -> None:
    clock = Clock()
    tokens = GatewayTokens(KEY, clock=clock)
    token, _ = tokens.issue("account")
    clock.now += 24 * 3600 + 60
    assert tokens.client_of(token, KNOWN) == "account"
    clock.now += TOKEN_LIFE
    assert tokens.client_of(token, KNOWN) is None


def test_a_removed_client_or_a_tampered_token_is_refused() -> None:
    tokens = GatewayTokens(KEY, clock=Clock())
    token, _ = tokens.issue("shop")
    assert tokens.client_of(token, frozenset({"account"})) is None
    prefix, payload, mac = token.split(".")
    forged = GatewayTokens(b"y" * 32).issue("shop")[0].split(".")[1]
    for bad in (
        f"{prefix}.{forged}.{mac}",
        f"{prefix}.{payload}.{mac[:-2]}",
        f"gw2.{payload}.{mac}",
        "",
        "not-a-token",
        "gw1..",
        token + "\udc80",
    ):
        assert tokens.client_of(bad, KNOWN) is None, bad


def test_credentials_match_only_whole_pairs() -> None:
    creds = Credentials([("account", "app", "s3cret"), ("shop", "shop-app", "shop-secret")])
    assert creds.match("app", "s3cret") == "account"
    assert creds.match("shop-app", "shop-secret") == "shop"
    assert creds.match("app", "shop-secret") is None
    assert creds.match("shop-app", "s3cret") is None
    assert creds.match("app\udc80", "s3cret") is None  # any text compares
